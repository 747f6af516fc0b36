"""Which slots are open, in SQL. A slot is a message that needs work: a review of it, a
reply under it, or a ranking of its replies. One predicate serves the hand-out, the lease
claim (re-checked under lock) and the availability counts, so they can never disagree.
"""

from __future__ import annotations

# The task type a slot gives, from the message and its tree.
KIND_SQL = """
CASE
  WHEN m.review_result IS NULL THEN
    CASE WHEN m.parent_id IS NULL THEN 'label_initial_prompt'
         WHEN m.role = 'assistant' THEN 'label_assistant_reply'
         ELSE 'label_prompter_reply' END
  WHEN t.state = 'ranking' THEN
    CASE WHEN m.role = 'prompter' THEN 'rank_assistant_replies'
         ELSE 'rank_prompter_replies' END
  ELSE
    CASE WHEN m.role = 'prompter' THEN 'assistant_reply' ELSE 'prompter_reply' END
END
"""

# Finish what is started first: rankings, then reviews, then new replies.
PRIORITY_SQL = """
CASE WHEN t.state = 'ranking' THEN 0 WHEN m.review_result IS NULL THEN 1 ELSE 2 END
"""

# Open slots of one language, ignoring who asks.
OPEN_SQL = """
t.lang = %(lang)s
AND t.state IN ('initial_prompt_review', 'growing', 'ranking')
AND NOT m.deleted
AND (
  (m.review_result IS NULL AND m.review_count < t.reviews_needed)
  OR (
    t.state = 'growing' AND m.review_result AND m.depth < t.max_depth
    AND m.children_count < CASE WHEN m.role = 'prompter'
        THEN t.max_children_prompter ELSE t.max_children_assistant END
    -- The tree's size goal counts accepted and pending messages and replies being written.
    AND (
      SELECT count(*) + count(*) FILTER (WHERE s.review_result AND s.lease_until > now())
      FROM trees_message s
      WHERE s.tree_id = t.id AND NOT s.deleted AND s.review_result IS NOT FALSE
    ) < t.goal_size
  )
  OR (
    t.state = 'ranking' AND m.review_result AND m.accepted_children_count >= 2
    AND (m.role = 'prompter' OR t.rank_prompter_replies)
    AND m.ranking_count < t.rankings_needed
    AND NOT EXISTS (SELECT 1 FROM trees_message c WHERE c.parent_id = m.id AND c.rank IS NOT NULL)
  )
)
"""

FREE_SQL = "(m.lease_until IS NULL OR m.lease_until < now())"

# What this volunteer may take: never their own message to review or reply to, never a
# ranking that includes their own reply, never a slot they already had. A slot is a message
# and a kind of work: reviewing a prompt does not stop you ranking its replies later.
ELIGIBLE_SQL = f"""
CASE WHEN t.state = 'ranking' THEN NOT EXISTS (
    SELECT 1 FROM trees_message c
    WHERE c.parent_id = m.id AND c.author_id = %(user)s AND NOT c.deleted
  )
  ELSE m.author_id IS DISTINCT FROM %(user)s
END
AND NOT EXISTS (
  SELECT 1 FROM tasks_task x
  WHERE x.slot_id = m.id AND x.user_id = %(user)s AND x.type = {KIND_SQL}
)
"""

CANDIDATES_SQL = f"""
SELECT m.id, m.tree_id, {KIND_SQL} AS kind
FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
WHERE {OPEN_SQL} AND {FREE_SQL} AND {ELIGIBLE_SQL} AND {KIND_SQL} = ANY(%(kinds)s)
ORDER BY {PRIORITY_SQL}, random()
LIMIT %(limit)s
"""

# Inserting the task in the statement that claims its slot: rank tasks get the replies to
# order, shuffled so no position is favoured.
_INSERT_TASK = """
INSERT INTO tasks_task (id, type, lang, user_id, tree_id, slot_id, status, created_at,
                        expires_at, offered_ids, skip_reason, skip_note)
SELECT %(task)s, claimed.kind, %(lang)s, %(user)s, claimed.tree_id, claimed.id, 'leased',
  clock_timestamp(),
  %(until)s,
  CASE WHEN claimed.kind LIKE 'rank_%%' THEN ARRAY(
    SELECT c.id FROM trees_message c
    WHERE c.parent_id = claimed.id AND NOT c.deleted AND c.review_result ORDER BY random()
  ) ELSE '{}'::uuid[] END,
  '', ''
FROM claimed
RETURNING id, type, tree_id, slot_id, offered_ids, created_at
"""

# Reviews and rankings: pick, lease and insert in one statement. The message row lock (SKIP
# LOCKED) is all the exclusion these need: each target lives on the slot's own row.
PICK_AND_CLAIM_SQL = f"""
WITH candidate AS (
  SELECT m.id, m.tree_id, {KIND_SQL} AS kind
  FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
  WHERE {OPEN_SQL} AND {FREE_SQL} AND {ELIGIBLE_SQL} AND {KIND_SQL} = ANY(%(kinds)s)
  ORDER BY {PRIORITY_SQL}, random()
  LIMIT 1
  FOR NO KEY UPDATE OF m SKIP LOCKED
), claimed AS (
  UPDATE trees_message SET lease_task_id = %(task)s, lease_until = %(until)s
  FROM candidate WHERE trees_message.id = candidate.id
  RETURNING trees_message.id, trees_message.tree_id, candidate.kind
)
{_INSERT_TASK}
"""

# Replies: the tree's size goal spans messages, so the claim runs with the tree locked, in a
# statement of its own whose fresh snapshot sees every lease and counter. Every write to a
# reply slot (its lease, its replies) happens under that lock. The lease test is repeated on
# the updated row itself, which PostgreSQL re-checks if the row changed meanwhile.
CLAIM_SQL = f"""
WITH claimed AS (
  UPDATE trees_message SET lease_task_id = %(task)s, lease_until = %(until)s
  WHERE id = %(message)s AND (lease_until IS NULL OR lease_until < now()) AND id IN (
    SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
    WHERE m.id = %(message)s AND {OPEN_SQL} AND {FREE_SQL} AND {ELIGIBLE_SQL}
      AND {KIND_SQL} = %(kind)s
  )
  RETURNING id, tree_id, %(kind)s::text AS kind
)
{_INSERT_TASK}
"""

# The claim locks the tree first; its UPDATE then locks the message (the module-wide order).
LOCK_TREE_SQL = "SELECT id FROM trees_messagetree WHERE id = %s FOR NO KEY UPDATE"

# Per task type: open slots in the language, those free now, and those this volunteer may take.
AVAILABILITY_SQL = f"""
SELECT {KIND_SQL} AS kind,
  count(*) AS open,
  count(*) FILTER (WHERE {FREE_SQL}) AS free,
  count(*) FILTER (WHERE {FREE_SQL} AND {ELIGIBLE_SQL}) AS yours
FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
WHERE {OPEN_SQL}
GROUP BY 1
"""

# The served model's reply slots: open, free assistant-reply slots (as a volunteer would get
# them) under prompts that have no model reply yet, so the model never answers one message
# twice and its replies are ranked against people's.
_MODEL_SLOT_SQL = f"""
{OPEN_SQL} AND {FREE_SQL} AND {KIND_SQL} = 'assistant_reply'
AND NOT EXISTS (
  SELECT 1 FROM trees_message c WHERE c.parent_id = m.id AND c.synthetic AND NOT c.deleted
)
"""

MODEL_CANDIDATES_SQL = f"""
SELECT m.id, m.tree_id
FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
WHERE {_MODEL_SLOT_SQL}
ORDER BY random()
"""

# Run with the tree locked (LOCK_TREE_SQL), as a volunteer's reply claim: the lease has no
# task row, only its id on the slot, and ends at `until` like any lease.
MODEL_CLAIM_SQL = f"""
UPDATE trees_message SET lease_task_id = %(lease)s, lease_until = %(until)s
WHERE id = %(message)s AND (lease_until IS NULL OR lease_until < now()) AND id IN (
  SELECT m.id FROM trees_message m JOIN trees_messagetree t ON t.id = m.tree_id
  WHERE m.id = %(message)s AND {_MODEL_SLOT_SQL}
)
RETURNING id
"""
