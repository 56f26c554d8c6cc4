"""What the model assets show in the Dagster UI: inlined plots and per-epoch tables."""

import base64

from tag_pipeline.defs.resources import MlflowResource
from tag_pipeline.lib.models.tracking import epoch_table, plot_training_curve, png_markdown


def test_training_curve_inlines_as_a_markdown_image(tmp_path):
    curve = plot_training_curve({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]},
                                tmp_path / "curve.png")
    markdown = png_markdown(curve, "training curve")
    assert markdown.startswith("![training curve](data:image/png;base64,")
    data = base64.b64decode(markdown.removeprefix(
        "![training curve](data:image/png;base64,").removesuffix(")"))
    assert data == curve.read_bytes() and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(markdown) < 120_000  # small enough for the event log


def test_epoch_table_lists_every_epoch_with_its_losses():
    table = epoch_table({"loss": [0.91234, 0.5], "val_loss": [1.0, 0.75]}, [12.04, 11.0])
    assert table.splitlines() == [
        "| epoch | loss | val_loss | seconds |",
        "| --- | --- | --- | --- |",
        "| 1 | 0.9123 | 1.0000 | 12.0 |",
        "| 2 | 0.5000 | 0.7500 | 11.0 |",
    ]


def test_links_go_to_the_configured_mlflow_ui():
    local = MlflowResource(tracking_uri="sqlite:///x.db", ui_url="http://127.0.0.1:5000/")
    assert local.model_version_url("tagger", "3") == \
        "http://127.0.0.1:5000/#/models/tagger/versions/3"
    assert local.run_url("1", "abc") == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    server = MlflowResource(tracking_uri="http://mlflow:5000")
    assert server.model_version_url("tagger", "3") == "http://mlflow:5000/#/models/tagger/versions/3"
    assert MlflowResource(tracking_uri="sqlite:///x.db").model_version_url("t", "1") is None
