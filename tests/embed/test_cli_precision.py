"""``hyperbolic precision`` end to end, as a user runs it."""

import json
import subprocess
import sys

import pytest

from embed.cli import main
from hyperbolic import registry


def test_json_lines_have_the_documented_keys(capsys):
    assert main(["precision", "--radii", "1", "40", "--pairs", "3", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"lorentz", "poincare", "halfspace", "geoopt-poincare", "geoopt-lorentz"} <= {r["manifold"] for r in rows}
    for row in rows:
        assert {"manifold", "radius", "pairs", "median_rel_err", "max_rel_err"} <= row.keys()
        assert row["pairs"] in ("near", "far")
    ours = [r for r in rows if r["manifold"] == "poincare" and r["dtype"] == "float64" and r["radius"] == 40]
    assert all(r["status"].startswith("beyond ceiling") for r in ours)


def test_table_output_and_unknown_manifold(capsys):
    assert main(["precision", "--radii", "5", "--pairs", "2", "--manifold", "halfspace", "--no-peers"]) == 0
    out = capsys.readouterr().out
    assert "| halfspace | float64 |" in out and "geoopt" not in out
    assert main(["precision", "--manifold", "nonsense"]) == 2
    assert "unknown manifold 'nonsense'" in capsys.readouterr().err


def test_against_stored_points(capsys):
    assert main(["precision", "--radii", "60", "--pairs", "2", "--manifold", "halfspace-mcf2", "--no-peers",
                 "--against", "stored", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["against"] == "stored" and r["max_rel_err"] < 1e-15 for r in rows)


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "embed.cli", "precision", "--radii", "1", "--pairs", "2",
                             "--json", "--no-peers"], capture_output=True, text=True, check=True)
    configurations = sum(len(entry.dtypes) for entry in registry.entries())
    assert len(result.stdout.splitlines()) == 2 * configurations  # near and far for each


def test_radii_outside_the_measurable_range_are_refused(capsys):
    for radius in ("nan", "-1", "0", "inf", "1e300"):
        with pytest.raises(SystemExit) as caught:
            main(["precision", "--radii", "1", radius, "--pairs", "1", "--no-peers"])
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert "--radii:" in err and "is not a radius in (0, 10000]" in err, err
