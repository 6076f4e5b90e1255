"""What every part of the catalogue is made of: ``Entry``, ``entry(en, zh, hint)`` and the hints
several messages share, each an (English, Chinese) pair."""

from __future__ import annotations

import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One message: its text and what to do about it, per language (``hint`` may be empty)."""

    en: str
    zh: str
    hint_en: str = ""
    hint_zh: str = ""
    joiners: tuple[str, str] = (", ", "、")  # between the items of a list argument, per language

    def fields(self) -> set[str]:
        """The argument names its English templates use (``{x_hint}``, the hint of a Message
        argument ``x``, is no argument of its own)."""
        return template_fields(self.en) | template_fields(self.hint_en)


def template_fields(template: str) -> set[str]:
    """The argument names a template uses (``{x_hint}`` beside ``{x}`` is no argument of its own)."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return {name for name in names if not (name.endswith("_hint") and name[:-len("_hint")] in names)}


# Hints several messages share: (English, Chinese).
RESAVE = ("save the network again and re-submit", "请重新保存网络后再提交")
UTF8 = ("save it as UTF-8 (any editor can)", "请以 UTF-8 编码保存（任何编辑器都可以）")
FORMAT = ("see docs/grading.md for the format", "格式见 docs/grading.md")
PLAIN_FILES = ("hand in only the network, its code and its training log",
                "只提交网络、它的代码和训练日志")
SAME_ARCH = ("build_model() must build the same architecture the weights were trained with",
              "build_model() 构建的网络结构必须与训练这些权重时的结构相同")
SAME_LAYERS = ("the network {code} builds ({name}) must have the same layers, with the same names and sizes, as "
                "the one the weights were saved from",
                "{code} 构建的网络（{name}）必须与保存这些权重时的网络有相同的层：名称相同、尺寸相同")
SHAPE = ("forward() must return logits of shape (n, 10)", "forward() 必须返回形状为 (n, 10) 的 logits")
CLASS = ("put the class in a model.py file beside the notebook, import it from there (from model import Net), "
          "build and train the network again, and rerun grader.check",
          "请把这个类放进笔记本旁边的 model.py 文件，从那里导入（`from model import Net`），"
          "重新构建并训练网络，然后再运行 grader.check")
HISTORY = ("pass a dict of per-epoch lists, e.g. history={{'train_loss': [...], 'train_acc': [...], "
            "'test_acc': [...]}}, a list of per-epoch dicts, or the path of a history.json/.csv/.pt",
            "请传入按 epoch 记录的列表组成的字典，例如 history={{'train_loss': [...], 'train_acc': [...], "
            "'test_acc': [...]}}；或每个 epoch 一个字典的列表；或 history.json/.csv/.pt 文件的路径")
PICK = ('add the line weights = "{pick}" (or the name of the one to grade) to submission.toml in the top folder of '
         'the hand-in; a TA can pick for the whole class in the rubric: [submission] weights = "..." (a path or glob '
         'such as "*.pth")',
         '请在提交内容顶层文件夹的 submission.toml 中加一行 weights = "{pick}"（或写要评分的那个文件名）；'
         '助教也可以在评分标准中为全班指定：[submission] weights = "..."（路径或通配符，如 "*.pth"）')
TAR_LINKS = ("archive the files themselves, not links to them (tar --dereference --hard-dereference)",
              "请打包文件本身，而不是指向它们的链接（tar 加 --dereference --hard-dereference）")
ARCHIVE = ("zip the folder that holds your network and code, and hand that in",
            "请把存放网络和代码的文件夹打包成 zip 后提交")


def entry(en: str, zh: str, hint: tuple[str, str] = ("", ""), joiners: tuple[str, str] = (", ", "、")) -> Entry:
    """An Entry from its two texts, its (English, Chinese) hint and list joiners."""
    return Entry(en, zh, *hint, joiners=joiners)
