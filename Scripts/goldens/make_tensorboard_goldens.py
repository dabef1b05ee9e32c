"""Writes the TensorBoard fixtures: an event file written by the `tensorboard` package's own record writer and
protocol messages, the list of events it holds, and what the `tensorboard` package's reader finds in it.

  events.json        the events to write: file version, scalars (tag, step, value, wall time), an image, a restart
  image.png          the image's PNG bytes
  reference.tfevents the event file, written with tensorboard.summary.writer.record_writer.RecordWriter and
                     tensorboard.compat.proto messages
  read_back.json     every scalar as tensorboard's EventFileLoader reads it back (tag, step, value), the image's
                     tag, step and size, the restart's step

The Swift test writes the same events with swift-detr's EventFile and requires the same bytes, so tensorboard
reads swift-detr's files as it reads its own.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_tensorboard_goldens.py   (needs `pip install tensorboard`)
"""
import io
import json
import pathlib

import tensorboard
from PIL import Image
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

OUT = pathlib.Path(__file__).resolve().parents[2] / "Tests/TrainingTests/Fixtures/tensorboard"
OUT.mkdir(parents=True, exist_ok=True)

buffer = io.BytesIO()
Image.new("RGB", (6, 4), (200, 30, 60)).save(buffer, format="PNG")
png = buffer.getvalue()
(OUT / "image.png").write_bytes(png)

events = [
    {"kind": "version", "wall_time": 1764201600.25},
    {"kind": "scalar", "tag": "train/loss", "step": 10, "value": 3.25, "wall_time": 1764201601.5},
    {"kind": "scalar", "tag": "train/loss_ce", "step": 10, "value": -0.0078125, "wall_time": 1764201601.5},
    {"kind": "scalar", "tag": "train/lr", "step": 20, "value": 1e-4, "wall_time": 1764201602.75},
    {"kind": "scalar", "tag": "val/ap_per_category/traffic light", "step": 300, "value": 0.5, "wall_time": 1764201700.0},
    {"kind": "scalar", "tag": "train/loss", "step": 0, "value": 0.0, "wall_time": 1764201600.5},
    {"kind": "image", "tag": "val/predictions/0", "step": 300, "width": 6, "height": 4, "wall_time": 1764201701.0},
    {"kind": "restart", "step": 20, "wall_time": 1764201800.0},
]
stream = open(OUT / "reference.tfevents", "wb")
writer = RecordWriter(stream)
for item in events:
    if item["kind"] == "version":
        event = Event(wall_time=item["wall_time"], file_version="brain.Event:2")
    elif item["kind"] == "scalar":
        event = Event(wall_time=item["wall_time"], step=item["step"],
                      summary=Summary(value=[Summary.Value(tag=item["tag"], simple_value=item["value"])]))
    elif item["kind"] == "image":
        image = Summary.Image(height=item["height"], width=item["width"], colorspace=3, encoded_image_string=png)
        event = Event(wall_time=item["wall_time"], step=item["step"], summary=Summary(value=[Summary.Value(tag=item["tag"], image=image)]))
    else:
        event = Event(wall_time=item["wall_time"], step=item["step"], session_log=SessionLog(status=SessionLog.START))
    writer.write(event.SerializeToString())
writer.flush()
stream.close()
(OUT / "events.json").write_text(json.dumps(events, indent=1))

found = {"scalars": [], "images": [], "restarts": [], "tensorboard": tensorboard.__version__,
         "script": "Scripts/goldens/make_tensorboard_goldens.py"}
for event in EventFileLoader(str(OUT / "reference.tfevents")).Load():
    if event.HasField("session_log"):
        found["restarts"].append(event.step)
    for value in event.summary.value:  # the loader turns simple values and images into tensors with plugin metadata
        plugin = value.metadata.plugin_data.plugin_name
        if plugin == "images":
            width, height = (int(b) for b in value.tensor.string_val[:2])
            found["images"].append({"tag": value.tag, "step": event.step, "width": width, "height": height,
                                    "png_bytes": len(value.tensor.string_val[2])})
        elif plugin == "scalars":
            found["scalars"].append({"tag": value.tag, "step": event.step, "value": float(tensor_util.make_ndarray(value.tensor))})
        else:
            raise SystemExit(f"unexpected summary {value}")
(OUT / "read_back.json").write_text(json.dumps(found, indent=1))
print(json.dumps(found, indent=1))
