"""Write the example hand-ins that are made from the trained ones, the way students make them.

    .venv/bin/python scripts/make_examples.py

- ``submissions/s2400004/``: the homework network as the student's own ``class Net(nn.Module)``,
  saved whole with ``torch.save(net, 'models/HW2_CNN.pth')`` by a script run as ``__main__``
  (so the pickle names ``__main__.Net``), with the class in ``model.py`` beside it. The weights
  are ``s2400001.pth``'s.
- ``submissions/s2400005.zip``: ``s2400002/`` as a learning-management system delivers it: a zip
  made on a Mac, holding one folder (``HW2_作业/``) and ``__MACOSX/`` litter.

Both are derived from committed files, so running this again gives the same networks.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "submissions"

NET_PY = '''"""The homework's network, written as its own class (a student's model.py)."""

import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(1024, 256), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(256, 10),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))
'''

SAVE_WHOLE = '''

if __name__ == "__main__":
    import sys
    from grader.stock_layers import stock_module_classes

    with torch.serialization.safe_globals(list(stock_module_classes())):
        trained = torch.load(sys.argv[1], weights_only=True)  # the homework's nn.Sequential
    net = Net()
    layers = list(net.features) + [None] + list(net.classifier)  # the Sequential's Flatten has no weights
    for mine, theirs in zip(layers, trained):
        if mine is not None:
            mine.load_state_dict(theirs.state_dict())
    torch.save(net.eval(), sys.argv[2])
'''


def make_custom_class() -> None:
    folder = SUBMISSIONS / "s2400004"
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(NET_PY, encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train.py"
        script.write_text(NET_PY + SAVE_WHOLE, encoding="utf-8")
        subprocess.run([sys.executable, str(script), str(SUBMISSIONS / "s2400001.pth"),
                        str(folder / "models" / "HW2_CNN.pth")], check=True, cwd=ROOT)


def make_zip() -> None:
    source = SUBMISSIONS / "s2400002"
    with zipfile.ZipFile(SUBMISSIONS / "s2400005.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.iterdir()):
            data = path.read_bytes()
            if path.name == "submission.toml":  # the zip's own student, not s2400002's
                data = data.replace(b'student = "s2400002"', b'student = "s2400005"')
            archive.writestr(f"HW2_作业/{path.name}", data)
            archive.writestr(f"__MACOSX/HW2_作业/._{path.name}", b"\x00\x05\x16\x07")  # Finder's resource fork


if __name__ == "__main__":
    make_custom_class()
    make_zip()
    print("wrote submissions/s2400004/ and submissions/s2400005.zip")
