"""The dashboard's inline SVG charts, read back with xml.etree: the geometry must match the inputs.

The y scale is not taken from the code: it is read from the chart's own labelled axis ticks
(the text "0.2 %" at y=145 ...), and every drawn value (a threshold line, a point, a bar) must sit
where that axis puts it. Expected positions therefore come from the inputs and the printed axis.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from web.dashboard.charts import Series, line_chart, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [f"2026-11-{day:02d}" for day in range(1, 31)]


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(str(markup))  # fails on anything unescaped
    assert root.tag == f"{SVG}svg"
    return root


def axis_value(text: str) -> float:
    """The number an axis label shows: "0.3 %" is 0.003, "12k" is 12000."""
    match = re.fullmatch(r"(-?[\d.]+)\s*(%|k|M|G)?", text.strip())
    assert match, f"not an axis label: {text!r}"
    number = float(match.group(1))
    return number * {None: 1, "%": 0.01, "k": 1e3, "M": 1e6, "G": 1e9}[match.group(2)]


def y_scale(root: ET.Element) -> tuple[float, float, list[float]]:
    """(y at value 0, y per unit of value, the tick values) from the chart's labelled y ticks."""
    ticks = [(axis_value("".join(group.find(f"{SVG}text").itertext())),  # type: ignore[union-attr]
              float(group.find(f"{SVG}line").get("y1")))  # type: ignore[union-attr,arg-type]
             for group in root.iter(f"{SVG}g") if group.get("class") == "y-tick"]
    assert len(ticks) >= 3
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    assert v0 == 0
    per_unit = (y1 - y0) / (v1 - v0)
    for value, y in ticks:  # every tick on the same straight scale, values going up the page
        assert y == pytest.approx(y0 + per_unit * value, abs=0.02)
    assert per_unit < 0
    return y0, per_unit, [value for value, _ in ticks]


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [group for group in root.iter(f"{SVG}g") if group.get("class") == cls]


def texts(element: ET.Element) -> list[str]:
    return ["".join(text.itertext()) for text in element.iter(f"{SVG}text")]


def test_a_threshold_line_is_dashed_named_and_at_its_value_on_the_axis() -> None:
    rates = Series("complaint rate", (0.001, 0.0012, None, 0.0021))
    root = parse(line_chart([rates], labels=DAYS[:4], percent=True, title="Complaint rate",
                            thresholds=[("Gmail/Yahoo 0.3 %", 0.003), ("SES 5 %", 0.05)]))
    y0, per_unit, ticks = y_scale(root)
    assert ticks[-1] >= 0.05  # the highest threshold is on the chart although no value comes near
    lines = {group.find(f"{SVG}title").text: group.find(f"{SVG}line")  # type: ignore[union-attr]
             for group in groups(root, "threshold")}
    assert set(lines) == {"Gmail/Yahoo 0.3 %", "SES 5 %"}
    for name, value in (("Gmail/Yahoo 0.3 %", 0.003), ("SES 5 %", 0.05)):
        line = lines[name]
        assert line is not None and line.get("stroke-dasharray")
        expected_y = y0 + per_unit * value
        assert float(line.get("y1", "nan")) == pytest.approx(expected_y, abs=0.02)
        assert line.get("y2") == line.get("y1")
    threshold_texts = [t for group in groups(root, "threshold") for t in texts(group)]
    assert threshold_texts == ["Gmail/Yahoo 0.3 %", "SES 5 %"]
    assert all(text.endswith(" %") for text in texts(groups(root, "y-axis")[0]))


def test_points_sit_on_the_axis_scale_and_none_leaves_a_gap() -> None:
    values = (3.0, 7.0, None, None, 12.0, 9.0, None, 1.0)
    root = parse(line_chart([Series("sends", values)], labels=DAYS[:8], title="Sends"))
    y0, per_unit, ticks = y_scale(root)
    assert ticks[-1] >= 12
    series = groups(root, "series")[0]
    dots = series.findall(f"{SVG}circle")
    assert len(dots) == sum(v is not None for v in values)
    known = [v for v in values if v is not None]
    for dot, value in zip(dots, known, strict=True):
        assert float(dot.get("cy", "nan")) == pytest.approx(y0 + per_unit * value, abs=0.02)
    # x: evenly spaced by label index, so a gap keeps the later points at their own day.
    xs = [float(dot.get("cx", "nan")) for dot in dots]
    indexes = [i for i, v in enumerate(values) if v is not None]
    step = (xs[-1] - xs[0]) / (indexes[-1] - indexes[0])
    for x, index in zip(xs, indexes, strict=True):
        assert x == pytest.approx(xs[0] + step * index, abs=0.02)
    # Three runs of values: the path lifts the pen twice (a new "M" after each gap).
    path = series.find(f"{SVG}path")
    assert path is not None
    assert path.get("d", "").count("M") == 3


def test_labels_and_names_are_escaped_and_shown_as_written() -> None:
    evil = '<script>alert("x")</script> & co'
    root = parse(line_chart([Series(evil, (1.0, 2.0))], labels=[evil, "b&b"],
                            thresholds=[("<limit>", 1.5)], title="</title><b>t</b>"))
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    assert root.find(f"{SVG}title").text == "</title><b>t</b>"  # type: ignore[union-attr]
    assert root.get("aria-label") == "</title><b>t</b>"
    assert evil in texts(groups(root, "x-axis")[0])
    assert "b&b" in texts(groups(root, "x-axis")[0])
    legend = texts(groups(root, "legend")[0])
    assert legend == [evil, "<limit>"]


def test_many_x_labels_are_thinned_but_all_points_drawn() -> None:
    root = parse(line_chart([Series("rate", tuple(float(i) for i in range(30)))], labels=DAYS))
    shown = texts(groups(root, "x-axis")[0])
    assert DAYS[0] in shown and 2 <= len(shown) <= 8
    assert len(groups(root, "series")[0].findall(f"{SVG}circle")) == 30


def test_stacked_bars_are_proportional_and_stacked_in_order() -> None:
    sends = Series("sends", (40.0, 100.0, 0.0, None))
    bounces = Series("bounces", (10.0, 5.0, 20.0, None))
    complaints = Series("complaints", (2.0, 0.0, 1.0, 3.0))
    root = parse(stacked_bars([sends, bounces, complaints], labels=DAYS[:4], title="Timeline"))
    y0, per_unit, ticks = y_scale(root)
    assert ticks[-1] >= 105  # the highest total
    rects = {group.get("data-name"): group.findall(f"{SVG}rect") for group in groups(root, "series")}
    # No bar for 0 or None.
    assert [len(rects[name]) for name in ("sends", "bounces", "complaints")] == [2, 3, 3]
    # Heights proportional to the values: the same pixels per unit as the axis.
    for name, series in (("sends", sends), ("bounces", bounces), ("complaints", complaints)):
        drawn = [float(rect.get("height", "nan")) for rect in rects[name]]
        expected = [-per_unit * v for v in series.values if v]
        assert drawn == pytest.approx(expected, abs=0.02)
    # Stacked: on day 1 bounces start where sends end, complaints where bounces end; the top of
    # the stack is at the total on the axis.
    sends_1, bounces_1, complaints_1 = rects["sends"][0], rects["bounces"][0], rects["complaints"][0]
    assert float(sends_1.get("y", "nan")) + float(sends_1.get("height", "nan")) == pytest.approx(y0, abs=0.02)
    assert float(bounces_1.get("y", "nan")) + float(bounces_1.get("height", "nan")) == pytest.approx(
        float(sends_1.get("y", "nan")), abs=0.02)
    assert float(complaints_1.get("y", "nan")) == pytest.approx(y0 + per_unit * 52, abs=0.02)
    # Every bar of a day has the same x and width; days are left to right.
    assert sends_1.get("x") == bounces_1.get("x") == complaints_1.get("x")
    xs = [float(rect.get("x", "nan")) for rect in rects["complaints"]]
    assert xs == sorted(xs)
    assert [t for t in texts(groups(root, "legend")[0])] == ["sends", "bounces", "complaints"]
    assert root.find(f"{SVG}title").text == "Timeline"  # type: ignore[union-attr]


def test_bar_tooltips_name_the_day_the_series_and_the_value() -> None:
    root = parse(stacked_bars([Series("complaints", (12000.0,))], labels=["2026-W48"]))
    rect = groups(root, "series")[0].find(f"{SVG}rect")
    assert rect is not None and rect.find(f"{SVG}title").text == "2026-W48: complaints 12k"  # type: ignore[union-attr]


def test_an_empty_chart_still_has_an_axis() -> None:
    root = parse(line_chart([Series("rate", (None, None))], labels=DAYS[:2], percent=True))
    _, _, ticks = y_scale(root)
    assert ticks[0] == 0 and ticks[-1] > 0
    assert groups(root, "series")[0].find(f"{SVG}path") is None


@pytest.mark.parametrize("chart", [line_chart, stacked_bars])
def test_a_series_must_have_one_value_per_label(chart: object) -> None:
    with pytest.raises(ValueError, match="has 2 values for 3 labels"):
        chart([Series("x", (1.0, 2.0))], labels=["a", "b", "c"])  # type: ignore[operator]


def test_stacked_bars_refuse_negative_values() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        stacked_bars([Series("x", (1.0, -2.0))], labels=["a", "b"])
