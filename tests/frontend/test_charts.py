"""The SVG chart module: axes, bars, lines, escaping and accessibility, without a database."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from frontend import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(chart: charts.Chart) -> ET.Element:
    # Inline SVG in HTML has no namespace declaration; add one to parse it as XML.
    markup = str(chart.svg).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1)
    return ET.fromstring(markup)  # noqa: S314 (our own markup, not untrusted input)


def test_ticks_are_round_numbers_from_zero_up_to_at_least_the_highest_value():
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert charts.nice_ticks(1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert charts.nice_ticks(0) == [0, 1]
    # Counts have whole steps: no "0.40 sibling sets".
    assert charts.nice_ticks(1, integers=True) == [0, 1]
    assert charts.nice_ticks(3, integers=True) == [0, 1, 2, 3]
    assert charts.nice_ticks(7, integers=True) == [0, 2, 4, 6, 8]


def test_a_bar_chart_draws_one_bar_per_row_with_heights_proportional_to_the_values():
    chart = charts.bar_chart(
        title="Trees", description="Trees per state.", rows=[("a", 4), ("b", 8), ("c", 0)]
    )
    svg = parse(chart)
    bars = svg.findall(f"{SVG}rect")
    heights = [float(bar.get("height")) for bar in bars]
    assert len(bars) == 3
    assert heights[1] == 2 * heights[0]
    assert heights[2] == 0
    assert [bar.find(f"{SVG}title").text for bar in bars] == ["a: 4", "b: 8", "c: 0"]
    # The axis runs to 8: the tallest bar fills the plot from the baseline to the top.
    assert heights[1] == charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert chart.rows == [("a", 4), ("b", 8), ("c", 0)]


def test_a_chart_is_an_image_named_by_its_title_and_description_for_screen_readers():
    svg = parse(charts.line_chart(title="Per day", description="Tasks per day.", rows=[]))
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert svg.get("role") == "img"
    assert (title.text, desc.text) == ("Per day", "Tasks per day.")
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_a_line_chart_joins_every_point_left_to_right_and_labels_the_axis():
    rows = [(f"d{i}", (i % 3) * 1.0 + (0.5 if i == 7 else 0)) for i in range(30)]
    svg = parse(charts.line_chart(title="Line", description="Points.", rows=rows))
    points = svg.find(f"{SVG}polyline").get("points").split()
    xs = [float(point.split(",")[0]) for point in points]
    assert len(points) == 30
    assert xs == sorted(xs)
    ticks = [t.text for t in svg.findall(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["0", "0.50", "1", "1.50", "2"]
    labels = [t.text for t in svg.findall(f"{SVG}text") if t.get("class") == "chart-label"]
    # Thirty labels would overlap: every fourth is written.
    assert labels == [f"d{i}" for i in range(0, 30, 4)]


def test_text_in_a_chart_is_escaped():
    chart = charts.bar_chart(
        title="<script>alert(1)</script>", description="a & b", rows=[("<b>x</b>", 1)]
    )
    assert "<script>" not in str(chart.svg)
    assert "<b>" not in str(chart.svg)
    assert "&lt;script&gt;" in str(chart.svg)
    parse(chart)  # still well-formed


def test_two_charts_on_one_page_have_distinct_element_ids():
    first = charts.bar_chart(title="A", description="x", rows=[("a", 1)])
    second = charts.bar_chart(title="B", description="x", rows=[("a", 1)])
    ids = re.findall(r'id="([^"]+)"', str(first.svg) + str(second.svg))
    assert len(ids) == len(set(ids)) == 4


def test_a_chart_is_drawn_with_theme_classes_not_fixed_colours_so_dark_mode_applies():
    markup = str(charts.bar_chart(title="A", description="x", rows=[("a", 1)]).svg)
    assert "fill=" not in markup
    assert "stroke=" not in markup
    assert 'class="chart-bar"' in markup


def test_horizontal_bars_are_labelled_on_the_left_with_widths_proportional_to_the_values():
    chart = charts.horizontal_bar_chart(
        title="Per type",
        description="Tasks per type.",
        rows=[("Write a first prompt", 10), ("Rank assistant replies", 5)],
    )
    svg = parse(chart)
    widths = [float(bar.get("width")) for bar in svg.findall(f"{SVG}rect")]
    labels = [t.text for t in svg.findall(f"{SVG}text") if t.get("class") == "chart-label"]
    values = [t.text for t in svg.findall(f"{SVG}text") if t.get("class") == "chart-value"]
    assert widths[0] == 2 * widths[1] == charts.H_WIDTH - charts.H_LEFT - charts.H_RIGHT
    assert labels == ["Write a first prompt", "Rank assistant replies"]
    assert values == ["10", "5"]
    # The drawing grows with the number of rows instead of squeezing them.
    height = float(svg.get("viewBox").split()[3])
    assert height == charts.TOP + 2 * charts.ROW + charts.BOTTOM_TICKS
