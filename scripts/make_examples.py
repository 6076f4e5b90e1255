"""Write the example hand-ins that are made from the trained ones, the way students make them.

    .venv/bin/python scripts/make_examples.py

- ``submissions/s2400004/``: the homework network as the student's own ``class Net(nn.Module)``,
  saved whole with ``torch.save(net, 'models/HW2_CNN.pth')`` by a script run as ``__main__``
  (so the pickle names ``__main__.Net``), with the class in ``model.py`` beside it. The weights
  are ``s2400001.pth``'s.
- ``submissions/s2400005.zip``: ``s2400002/`` as a learning-management system delivers it: a zip
  made on a Mac, holding one folder (``HW2_作业/``) and ``__MACOSX/`` litter.
- ``submissions/s2400006/`` (``--continue-training``, minutes of CPU): ``s2400002``'s network
  trained three more epochs the way a student continues a run: no augmentation, plain
  cross-entropy, SGD with Nesterov momentum, the learning rate falling linearly to 0 in each
  epoch (0.01, 0.02, 0.02; weight decay 5e-4, 5e-4, 0). Its history is the fast run's four
  epochs and these three, each logged as the mean loss and accuracy of the epoch's training
  batches and the test accuracy after it. It passes all three of the homework's assertions.

The first two are derived from committed files, so running this again gives the same networks;
the third depends on the CIFAR-10 copy (``GRADER_DATA``) and on floating-point order.
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


# (learning rate, weight decay) of each continued epoch.
CONTINUED_EPOCHS = ((0.01, 5e-4), (0.02, 5e-4), (0.02, 0.0))


def _one_epoch(net, data, prepare, *, lr: float, weight_decay: float, seed: int) -> tuple[float, float, float]:
    """One epoch of plain SGD over the training set; (mean loss, accuracy of the training batches,
    test accuracy after it)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    optimiser = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    batch, order = 250, np.random.default_rng(seed).permutation(len(data.train_labels))
    steps = len(order) // batch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1 - step / steps)
    net.train()
    loss_sum = correct = 0.0
    for step in range(steps):
        picked = order[step * batch:(step + 1) * batch]
        labels = torch.from_numpy(data.train_labels[picked]).long()
        out = net(prepare(data.train_images[picked]))
        loss = F.cross_entropy(out, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        loss_sum += loss.item() * batch
        correct += (out.argmax(1) == labels).sum().item()
    net.eval()
    with torch.no_grad():
        hits = sum(int((net(prepare(data.test_images[i:i + 500])).argmax(1).numpy()
                        == data.test_labels[i:i + 500]).sum()) for i in range(0, len(data.test_labels), 500))
    seen = steps * batch
    return loss_sum / seen, correct / seen, hits / len(data.test_labels)


def make_continued_training() -> None:
    import importlib.util
    import json
    import shutil

    import torch

    from grader.data import load_cifar10

    source, folder = SUBMISSIONS / "s2400002", SUBMISSIONS / "s2400006"
    spec = importlib.util.spec_from_file_location("s2400002_model", source / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build_model()
    net.load_state_dict(torch.load(source / "weights.pt", weights_only=True))
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.247, 0.2435, 0.2616]).view(1, 3, 1, 1)

    def prepare(images):
        return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - mean) / std

    torch.manual_seed(0)
    data = load_cifar10(None)
    history = json.loads((source / "history.json").read_text(encoding="utf-8"))
    history.pop("elapsed_s", None)
    for seed, (lr, weight_decay) in enumerate(CONTINUED_EPOCHS):
        loss, accuracy, test = _one_epoch(net, data, prepare, lr=lr, weight_decay=weight_decay, seed=seed)
        print(f"epoch {len(history['epoch']) + 1}: train_loss {loss:.4f} train_acc {accuracy:.2%} test_acc {test:.2%}")
        for key, value in (("epoch", len(history["epoch"]) + 1), ("train_loss", loss), ("train_acc", accuracy),
                           ("test_acc", test)):
            history[key].append(value)
    folder.mkdir(exist_ok=True)
    shutil.copy(source / "model.py", folder / "model.py")
    torch.save(net.state_dict(), folder / "weights.pt")
    (folder / "history.json").write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    manifest = (source / "submission.toml").read_text(encoding="utf-8")
    (folder / "submission.toml").write_text(manifest.replace('student = "s2400002"', 'student = "s2400006"')
                                            .replace('name = "Fast Recipe Example"', 'name = "Continued Training"'),
                                            encoding="utf-8")


if __name__ == "__main__":
    if "--continue-training" in sys.argv[1:]:
        make_continued_training()
        print("wrote submissions/s2400006/")
    else:
        make_custom_class()
        make_zip()
        print("wrote submissions/s2400004/ and submissions/s2400005.zip")
