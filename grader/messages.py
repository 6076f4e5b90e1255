"""What the grader tells a student, in English and Chinese: one catalogue of keyed templates.

    say(key, **args) -> Message          English text (a str) that knows its key and arguments
    message.text(lang), message.hint(lang)
    Message.from_json(obj, untrusted=...) -> Message | None      None for an unknown or malformed one
    error_for(detail, text, lang) -> Shown   an error for a reader of ``lang``; its English under a
                                             lead-in when it has no catalogue entry

A ``Message`` is the English text itself, so logs, the CLI, results.json's ``error`` and
``notes`` and every test that reads them see what they always saw; the key and arguments travel
beside it (``error_detail``, ``notes_detail``) and a report in another language says it again
from the catalogue. Templates use ``str.format`` fields without format specs: an argument is a
string (a name within the hand-in; a path is shortened to one, as the English text is, by
``GradeResult.student_error_detail``), a number, a tuple of them, or another Message (said in the
reader's language too; ``{x_hint}`` is the hint of a Message argument ``x``).

Nothing here imports from the rest of ``grader``: every layer may say something to a student.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

LANGS = ("en", "zh")
# Shown above an English message that has no catalogue entry, for a reader of another language.
RAW_LEAD = {"en": "", "zh": "评分程序的原始信息（英文）："}
HINT_LABEL = {"en": "hint: ", "zh": "建议："}  # before the hint, where it shares a text with the message
ARG_CHARS = 600  # an argument from the untrusted child longer than this is not accepted
NESTING, LIST_ITEMS = 3, 20  # how deep messages nest, how long a list argument is, when read back


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
        return _fields(self.en) | _fields(self.hint_en)


def _fields(template: str) -> set[str]:
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return {name for name in names if not (name.endswith("_hint") and name[:-len("_hint")] in names)}


# Hints several messages share: (English, Chinese).
_RESAVE = ("save the network again and re-submit", "请重新保存网络后再提交")
_UTF8 = ("save it as UTF-8 (any editor can)", "请以 UTF-8 编码保存（任何编辑器都可以）")
_FORMAT = ("see docs/grading.md for the format", "格式见 docs/grading.md")
_PLAIN_FILES = ("hand in only the network, its code and its training log",
                "只提交网络、它的代码和训练日志")
_SAME_ARCH = ("build_model() must build the same architecture the weights were trained with",
              "build_model() 构建的网络结构必须与训练这些权重时的结构相同")
_SAME_LAYERS = ("the network {code} builds ({name}) must have the same layers, with the same names and sizes, as "
                "the one the weights were saved from",
                "{code} 构建的网络（{name}）必须与保存这些权重时的网络有相同的层：名称相同、尺寸相同")
_SHAPE = ("forward() must return logits of shape (n, 10)", "forward() 必须返回形状为 (n, 10) 的 logits")
_CLASS = ("put the class in a model.py file beside the notebook, import it from there (from model import Net), "
          "build and train the network again, and rerun grader.check",
          "请把这个类放进笔记本旁边的 model.py 文件，从那里导入（`from model import Net`），"
          "重新构建并训练网络，然后再运行 grader.check")
_HISTORY = ("pass a dict of per-epoch lists, e.g. history={{'train_loss': [...], 'train_acc': [...], "
            "'test_acc': [...]}}, a list of per-epoch dicts, or the path of a history.json/.csv/.pt",
            "请传入按 epoch 记录的列表组成的字典，例如 history={{'train_loss': [...], 'train_acc': [...], "
            "'test_acc': [...]}}；或每个 epoch 一个字典的列表；或 history.json/.csv/.pt 文件的路径")
_PICK = ('add the line weights = "{pick}" (or the name of the one to grade) to submission.toml in the top folder of '
         'the hand-in; a TA can pick for the whole class in the rubric: [submission] weights = "..." (a path or glob '
         'such as "*.pth")',
         '请在提交内容顶层文件夹的 submission.toml 中加一行 weights = "{pick}"（或写要评分的那个文件名）；'
         '助教也可以在评分标准中为全班指定：[submission] weights = "..."（路径或通配符，如 "*.pth"）')
_TAR_LINKS = ("archive the files themselves, not links to them (tar --dereference --hard-dereference)",
              "请打包文件本身，而不是指向它们的链接（tar 加 --dereference --hard-dereference）")
_ARCHIVE = ("zip the folder that holds your network and code, and hand that in",
            "请把存放网络和代码的文件夹打包成 zip 后提交")


def _entry(en: str, zh: str, hint: tuple[str, str] = ("", ""), joiners: tuple[str, str] = (", ", "、")) -> Entry:
    return Entry(en, zh, *hint, joiners=joiners)


CATALOGUE: dict[str, Entry] = {
    # --- submission.toml ---------------------------------------------------------------------
    "manifest.not_toml": _entry("{file} is not valid TOML: {reason}", "{file} 不是有效的 TOML：{reason}", _FORMAT),
    "manifest.too_deep": _entry("{file} nests arrays or tables too deep", "{file} 中的数组或表嵌套得太深", _FORMAT),
    "manifest.unknown_keys": _entry("{file}: unknown key(s) {keys}", "{file}：无法识别的键 {keys}",
                                    ("known keys: {known}", "可用的键：{known}")),
    "manifest.not_string": _entry("{file}: {key} must be a string, got {value}",
                                  "{file}：{key} 必须是字符串，实际写的是 {value}",
                                  ('write it in quotes, e.g. {key} = "..."', '请加上引号，例如 {key} = "..."')),
    "manifest.link": _entry("{file} is a link; it was not read", "{file} 是一个链接，没有读取",
                            ("hand in {file} itself, not a link to it", "请提交 {file} 文件本身，而不是指向它的链接")),
    "manifest.unreadable": _entry("{file} cannot be read ({reason})", "无法读取 {file}（{reason}）",
                                  ("hand in a readable file", "请提交可读的文件")),
    "manifest.too_large": _entry("{file} is not a file of at most {kib} KiB", "{file} 不是普通文件，或超过了 {kib} KiB",
                                 ("a manifest is a few lines, see docs/grading.md",
                                  "submission.toml 只需要几行，见 docs/grading.md")),
    "manifest.not_utf8": _entry("{file} is not UTF-8 text (byte {byte} is not)",
                                "{file} 不是 UTF-8 文本（偏移 {byte} 处的字节不合法）", _UTF8),
    "input.not_table": _entry("{where} must be a table", "{where} 必须是一个表",
                              ("write [input] with scale, mean, std below it",
                               "请写一行 [input]，并在其下写 scale、mean、std")),
    "input.unknown_keys": _entry("{where}: unknown key(s) {keys}", "{where}：无法识别的键 {keys}",
                                 ("known: scale, mean, std, channels", "可用的键：scale、mean、std、channels")),
    "input.bad_scale": _entry("{where}: scale must be a positive number, got {value}",
                              "{where}：scale 必须是正数，实际写的是 {value}",
                              ("1.0 when the network expects 0..1 pixels, 255.0 for 0..255",
                               "网络的输入像素在 0..1 之间时写 1.0，在 0..255 之间时写 255.0")),
    "input.bad_channels": _entry('{where}: channels must be "rgb" or "bgr", got {value}',
                                 '{where}：channels 必须是 "rgb" 或 "bgr"，实际写的是 {value}',
                                 ('channels = "bgr" for a network trained on OpenCV images, else leave it out',
                                  '用 OpenCV 读取的图像训练的网络写 channels = "bgr"，否则不要写这一行')),
    "input.bad_triple": _entry("{where}: {key} must be three numbers (R, G, B){bound}, got {value}",
                               "{where}：{key} 必须是三个数（R、G、B）{bound}，实际写的是 {value}",
                               ("e.g. {key} = [0.5, 0.5, 0.5]", "例如 {key} = [0.5, 0.5, 0.5]")),
    "classes.not_list": _entry("{where} must list the {count} class names, got {value}",
                               "{where} 必须列出 {count} 个类别名，实际写的是 {value}",
                               ('in the order of the network\'s outputs, e.g. classes = ["plane", "car", "bird", '
                                '...]; the names: {known}',
                                '按网络输出的顺序排列，例如 classes = ["plane", "car", "bird", ...]；'
                                "可用的类别名：{known}")),
    "classes.alias": _entry("{name} (or {alias})", "{name}（或 {alias}）"),
    "classes.unknown": _entry("{where}: unknown class name(s) {names}", "{where}：无法识别的类别名 {names}",
                              ("the names: {known}", "可用的类别名：{known}")),
    "classes.repeated": _entry("{where} names {repeated} more than once and lacks {missing}",
                               "{where} 中 {repeated} 出现了不止一次，又缺少 {missing}",
                               ("name each class once, in the order of the network's outputs",
                                "每个类别只写一次，按网络输出的顺序排列")),
    "classes.unmatched": _entry("classes in submission.toml cannot be matched to the data's classes ({names})",
                                "submission.toml 中的 classes 与数据集的类别（{names}）对不上",
                                ("grade on CIFAR-10, or leave classes out of submission.toml",
                                 "请在 CIFAR-10 上评分，或在 submission.toml 中去掉 classes")),
    "entry.malformed": _entry('entry = "{spec}" is not "file.py:callable"',
                              'entry = "{spec}" 不是 "file.py:callable" 的形式',
                              ('e.g. entry = "model.py:Net"', '例如 entry = "model.py:Net"')),
    "entry.file_missing": _entry(
        "{weights} holds only weights ({form}), and {file} is missing",
        "{weights} 只包含权重（{form}），而 {file} 不存在",
        ('hand in a folder with model.py defining build_model() that returns the network, or name it in '
         'submission.toml: entry = "file.py:NameOfClassOrFunction"',
         "请提交一个文件夹，其中的 model.py 定义返回网络的 build_model()；或在 submission.toml 中指明："
         'entry = "file.py:类名或函数名"')),
    "path.not_a_name": _entry("{key} = {value} is not a file name", "{key} = {value} 不是文件名",
                              ("name a file inside the folder", "请写文件夹中某个文件的名字")),
    "path.outside": _entry(
        "{key} = {value} points outside the submission folder (a path or a link that leaves it: another "
        "student's files, say)",
        "{key} = {value} 指向了提交文件夹之外（路径或链接离开了这个文件夹，例如指向其他同学的文件）",
        ("hand in the file itself, inside the folder, and name it relative to the folder",
         "请把文件本身放进文件夹，并写它相对于这个文件夹的路径")),
    # --- finding and reading the checkpoint ---------------------------------------------------
    "hand_in.dangling_link": _entry(
        "{file} is a link to {target}, which does not exist", "{file} 是指向 {target} 的链接，而链接的目标不存在",
        ("hand in the file itself (an archive can keep a link and lose what it pointed to)",
         "请提交文件本身（压缩包可能只保留了链接，丢掉了它指向的文件）")),
    "hand_in.missing": _entry("{file} does not exist", "{file} 不存在",
                              ("pass the file or folder the student handed in", "请指定学生提交的文件或文件夹")),
    "hand_in.unsafe_folder": _entry(
        "{file} was refused: {why}; nothing in it was graded", "{file} 被拒绝：{why}；其中的内容都没有评分",
        ("hand in the network, its code and its training log as plain files in one folder (or a zip of it), "
         "without links",
         "请把网络、代码和训练日志作为普通文件放在一个文件夹里提交（或打包成 zip），不要用链接")),
    "walk.link_out": _entry("'{name}' points outside the submission folder (a link that leaves it), and was not read",
                            "'{name}' 指向提交文件夹之外（一个离开该文件夹的链接），没有读取"),
    "walk.link_nowhere": _entry("{name} is a link to a folder or to nothing; hand in the files themselves",
                                "{name} 是指向文件夹或不存在之处的链接；请提交文件本身"),
    "walk.too_deep": _entry("it nests folders more than {depth} deep ({name})", "文件夹嵌套超过 {depth} 层（{name}）"),
    "walk.unlistable": _entry("folder {name} cannot be listed ({reason})", "无法列出文件夹 {name} 的内容（{reason}）"),
    "walk.too_many": _entry("it holds more than {cap} files and folders (the cap)",
                            "其中的文件和文件夹超过了上限 {cap} 个"),
    "walk.unreadable": _entry("{name} cannot be read ({reason})", "无法读取 {name}（{reason}）"),
    "walk.file_kind": _entry("{name} is {kind}, which a hand-in has no use for", "{name} 是{kind}，提交内容用不到它"),
    # what a file is, when it is neither a plain file nor a folder
    "kind.character_device": _entry("a character device", "字符设备"),
    "kind.block_device": _entry("a block device", "块设备"),
    "kind.fifo": _entry("a FIFO", "命名管道"),
    "kind.socket": _entry("a socket", "套接字"),
    "kind.sparse": _entry("a sparse file", "稀疏文件"),
    "kind.other": _entry("not a plain file or folder", "既非普通文件也非文件夹的东西"),
    "weights.no_such_file": _entry('weights = "{name}" in submission.toml: no such file in {folder}',
                                   'submission.toml 中的 weights = "{name}"：{folder} 中没有这个文件',
                                   ("fix the name, or hand in the file", "请改正文件名，或提交这个文件")),
    "weights.none": _entry("no checkpoint in {folder} (looked for {suffixes})",
                           "{folder} 中没有检查点文件（查找了 {suffixes}）",
                           ("hand in the saved network, e.g. torch.save(net, 'model.pth')",
                            "请提交保存好的网络，例如 torch.save(net, 'model.pth')")),
    "weights.several": _entry(
        "{folder} holds several checkpoints and nothing says which one to grade: {names}",
        "{folder} 中有多个检查点文件，但没有指明评哪一个：{names}",
        _PICK),
    "weights.several_rubric": _entry(
        "{folder} holds several checkpoints and nothing says which one to grade: {names}; the rubric's "
        'weights = "{pattern}" matches {matches}',
        '{folder} 中有多个检查点文件，但没有指明评哪一个：{names}；评分标准的 weights = "{pattern}" 匹配到 {matches}',
        _PICK),
    "weights.several_rubric_none": _entry(
        "{folder} holds several checkpoints and nothing says which one to grade: {names}; the rubric's "
        'weights = "{pattern}" matches none of them',
        '{folder} 中有多个检查点文件，但没有指明评哪一个：{names}；评分标准的 weights = "{pattern}" 一个也没有匹配到',
        _PICK),
    "weights.empty": _entry("{file} is empty (0 bytes)", "{file} 是空文件（0 字节）", _RESAVE),
    "weights.too_large": _entry("{file} is {size} MiB, over the {limit} MiB limit",
                                "{file} 有 {size} MiB，超过了 {limit} MiB 的上限",
                                ("hand in only the trained network", "只提交训练好的网络")),
    "weights.alone": _entry(
        "{file} holds only weights ({form}) and was handed in alone, without the code that builds the network",
        "{file} 只包含权重（{form}），而且是单独提交的，没有构建网络的代码",
        ("hand in a folder with the weights and model.py (code beside a lone file is never used: it may be "
         "another student's); a TA can pass --model-code for the whole class",
         "请提交一个包含权重和 model.py 的文件夹（单个文件旁边的代码不会被使用：它可能属于其他同学）；"
         "助教可以用 --model-code 为全班提供代码")),
    "weights.ta_code_unreadable": _entry(
        "{file} holds only weights ({form}), and the model code {code} could not be read",
        "{file} 只包含权重（{form}），而模型代码 {code} 无法读取",
        ("--model-code (or the rubric's model_code) must name Python or a notebook that defines the network",
         "--model-code（或评分标准中的 model_code）必须指向定义网络的 Python 文件或笔记本")),
    "form.unknown": _entry(
        "{file}: unknown format (its first bytes match none of the formats below)",
        "{file}：无法识别的格式（文件开头的字节与下列格式都不符）",
        ("hand in a torch.save file, safetensors, TorchScript, a .pt2 from torch.export, or ONNX; see "
         "docs/grading.md",
         "请提交 torch.save 保存的文件、safetensors、TorchScript、torch.export 导出的 .pt2 或 ONNX；"
         "见 docs/grading.md")),
    "form.bad_checksum": _entry("{file} is corrupt ({member} fails its checksum)",
                                "{file} 已损坏（{member} 的校验和不符）", _RESAVE),
    "form.zip_not_checkpoint": _entry("{file} is a zip file but not a torch.save checkpoint",
                                      "{file} 是 zip 文件，但不是 torch.save 保存的检查点",
                                      ("hand in the file torch.save wrote, not an archive of files",
                                       "请提交 torch.save 写出的文件，而不是把文件打包成的压缩包")),
    "form.pickle_too_large": _entry("{file}: its pickle is {size} bytes, too large to check",
                                    "{file}：其中的 pickle 有 {size} 字节，太大，无法检查",
                                    ("save only the network (or its state_dict)", "只保存网络（或它的 state_dict）")),
    "form.truncated": _entry("{file} is truncated or corrupt (its zip directory cannot be read)",
                             "{file} 不完整或已损坏（无法读取它的 zip 目录）",
                             ("save the network again and re-submit; an upload cut short is the usual cause",
                              "请重新保存网络后再提交；通常是上传没有完成")),
    "form.pickle_unreadable": _entry("{file} is corrupt: its pickle cannot be read ({reason})",
                                     "{file} 已损坏：其中的 pickle 无法读取（{reason}）", _RESAVE),
    "form.missing_class": _entry(
        "{file} holds a whole network of class {pickled}, and no code handed in defines {name}",
        "{file} 保存的是整个网络，类为 {pickled}，但提交的代码中没有定义 {name}",
        ("the network was saved whole with torch.save(net, ...), so its class {name} must come with it: hand in "
         "a model.py beside the checkpoint that holds\n      import torch\n      import torch.nn as nn\n\n"
         "      class {name}(nn.Module):\n          ...  # paste your class definition here\n"
         "  (or the notebook that defines it; a TA can pass --model-code for the whole class)",
         "网络是用 torch.save(net, ...) 整个保存的，所以必须同时提交它的类 {name}：请在检查点旁边放一个 model.py，"
         "内容为\n      import torch\n      import torch.nn as nn\n\n"
         "      class {name}(nn.Module):\n          ...  # 在这里粘贴你的类定义\n"
         "  （或提交定义它的笔记本；助教可以用 --model-code 为全班提供代码）")),
    "form.foreign_globals": _entry(
        "{file} asks to load {names}, outside the allowed torch.nn classes",
        "{file} 要求加载 {names}，不在允许的 torch.nn 类之内",
        ("it was refused without being run; hand in plain weights, stock torch.nn layers, or your network's "
         "class in model.py",
         "文件没有运行就被拒绝了；请提交纯权重、由标准 torch.nn 层组成的网络，或在 model.py 中提供你的网络类")),
    "precheck.refused": _entry(
        "{file} was refused before loading: {problems}", "{file} 在加载前被拒绝：{problems}",
        ("save weights with torch.save(model.state_dict(), path) (the default zip format) or safetensors, and "
         "nothing but tensors and plain data",
         "请用 torch.save(model.state_dict(), path)（默认的 zip 格式）或 safetensors 保存权重，"
         "且只保存张量和普通数据"), joiners=("; ", "；")),
    "precheck.over_cap": _entry("it is {size}, over the {cap} cap", "文件有 {size}，超过了 {cap} 的上限"),
    "precheck.bare_pickle": _entry(
        "it is a bare pickle (pickle.dump), not a torch.save file in the zip or legacy pickle format, and a bare "
        "pickle can run code when loaded",
        "文件是用 pickle.dump 直接保存的 pickle，不是 zip 格式或旧格式的 torch.save 文件，而这样的 pickle "
        "在加载时可能运行代码"),
    "precheck.truncated_storage": _entry(
        "it is truncated: storage {key} claims {claimed} but the file holds {held} from there on",
        "文件不完整：存储 {key} 应有 {claimed}，但文件从那里往后只剩 {held}"),
    "precheck.cut_short": _entry("it is truncated or corrupt: {what} cannot be read ({reason})",
                                 "文件不完整或已损坏：无法读取{what}（{reason}）"),
    "precheck.cut_short_large": _entry(
        "{what} cannot be read within the first {limit} of the file ({reason}): too large to check, or corrupt",
        "在文件的前 {limit} 中无法读取{what}（{reason}）：太大无法检查，或已损坏"),
    "precheck.its_facts": _entry("its system facts", "其中的系统信息"),
    "precheck.its_pickle": _entry("its pickle", "其中的 pickle"),
    "precheck.its_storages": _entry("its list of storages", "其中的存储列表"),
    "precheck.foreign_global": _entry(
        "{what} refers to {name}, which a weights file has no use for (it is how a pickle runs code)",
        "{what} 引用了 {name}，权重文件用不到它（pickle 正是借此运行代码）"),
    "precheck.bad_pickle": _entry("{name} is not a well-formed pickle ({reason})", "{name} 不是格式正确的 pickle（{reason}）"),
    "precheck.legacy_module": _entry(
        "it holds a whole network in torch's legacy format, which only an unrestricted (code-running) load can "
        "read; hand in its state_dict",
        "文件以 torch 的旧格式保存了整个网络，只有不受限制（会运行代码）的加载才能读取；请提交它的 state_dict"),
    "precheck.unreadable": _entry("cannot read {file}: {reason}", "无法读取 {file}：{reason}"),
    "precheck.too_many_entries": _entry("it has more than {cap} zip entries (the cap)", "文件的 zip 条目超过了上限 {cap} 个"),
    "precheck.zip_entries_over": _entry("it has {count} zip entries, over the cap of {cap}",
                                        "文件有 {count} 个 zip 条目，超过了 {cap} 个的上限"),
    "precheck.unreadable_zip": _entry("it is not a readable zip archive ({reason})", "文件不是可读取的 zip 压缩包（{reason}）"),
    "precheck.pickle_over": _entry("{name} is {size}, over the cap of {cap}", "{name} 有 {size}，超过了 {cap} 的上限"),
    "precheck.pickles_over": _entry("its pickles hold over {cap} together (the cap)",
                                    "其中的 pickle 合计超过了 {cap} 的上限"),
    "precheck.several_data": _entry("it holds {count} data.pkl entries; torch.save writes one",
                                    "其中有 {count} 个 data.pkl 条目，而 torch.save 只写一个"),
    "precheck.stray_pickles": _entry(
        "it holds {count} pickle(s) that torch does not read ({names}); a torch.save archive has one data.pkl, "
        "TorchScript adds constants.pkl",
        "其中有 {count} 个 torch 不会读取的 pickle（{names}）；torch.save 的压缩包只有一个 data.pkl，"
        "TorchScript 另有 constants.pkl"),
    "precheck.compressed": _entry(
        "entry {name} is compressed ({packed} -> {size} bytes); torch.save stores entries uncompressed",
        "其中的 {name} 是压缩过的（{packed} -> {size} 字节）；torch.save 存储条目时不会压缩"),
    "precheck.outside": _entry("entry {name} lies outside the file", "其中的 {name} 位于文件范围之外"),
    "precheck.overlap": _entry("its entries declare {declared} in a {size} file (overlapping entries)",
                               "其中的条目在 {size} 的文件中声明了 {declared}（条目互相重叠）"),
    "precheck.no_data_pkl": _entry("it has no data.pkl: not a torch.save, TorchScript or torch.export archive",
                                   "其中没有 data.pkl：不是 torch.save、TorchScript 或 torch.export 的压缩包"),
    "precheck.in_pickle": _entry("{name}: {problem}", "{name}：{problem}"),
    "precheck.tensors_over": _entry("its tensors claim {size}, over the {cap} cap", "其中的张量声称有 {size}，超过了 {cap} 的上限"),
    "precheck.unexpected_id": _entry("unexpected persistent id ({value})", "意外的持久化标识（{value}）"),
    "precheck.unexpected_id_in": _entry("{what} has an unexpected persistent id ({value})",
                                        "{what}中有意外的持久化标识（{value}）"),
    "precheck.storage_not_key": _entry("a storage is named by {value}, not a key", "某个存储用 {value} 命名，而不是用键"),
    "precheck.storage_unknown": _entry("storage {key} has an unknown type {kind} or count {count}",
                                       "存储 {key} 的类型 {kind} 或元素个数 {count} 无法识别"),
    "precheck.storage_no_entry": _entry("storage {key} has no entry {entry}", "存储 {key} 没有对应的条目 {entry}"),
    "precheck.storage_claims": _entry("storage {key} claims {claimed} but its entry holds {held}",
                                      "存储 {key} 声称有 {claimed}，但它的条目只有 {held}"),
    "precheck.storage_two_sizes": _entry("storage {key} is named with two different sizes", "存储 {key} 以两种不同的大小出现"),
    "precheck.storage_view_outside": _entry("storage {key} has a view outside it", "存储 {key} 的某个视图超出了它的范围"),
    "precheck.storage_count": _entry("storage {key} holds {count} elements where its pickle names {numel}",
                                     "存储 {key} 有 {count} 个元素，而 pickle 中写的是 {numel} 个"),
    "precheck.storages_mismatch": _entry("its list of storages does not match its pickle (storage {key})",
                                         "其中的存储列表与 pickle 不符（存储 {key}）"),
    "precheck.storages_over": _entry("it has {count} storages, over the cap of {cap}",
                                     "文件有 {count} 个存储，超过了 {cap} 个的上限"),
    "precheck.legacy_no_version": _entry("it has torch's legacy magic number but no known format version after it",
                                         "文件开头是 torch 旧格式的魔数，但后面没有已知的格式版本"),
    "precheck.not_key_list": _entry("not a list of keys", "不是键的列表"),
    "pickle.unreadable_past": _entry("it cannot be read past byte {pos} ({kind})",
                                     "第 {pos} 个字节之后无法读取（{kind}）"),
    "pickle.stopped": _entry("{reason} (at byte {pos})", "{reason}（在第 {pos} 个字节处）"),
    "pickle.pops_too_much": _entry("it pops more than its stack holds", "它从栈中弹出的比栈里有的还多"),
    "pickle.empty_top": _entry("it reads the top of an empty stack", "它读取了空栈的栈顶"),
    "pickle.unopened_mark": _entry("it closes a MARK it never opened", "它结束了一个从未开始的 `MARK`"),
    "pickle.too_many_globals": _entry("it names more than {cap} globals", "它引用的全局名超过了 {cap} 个"),
    "pickle.too_many_ids": _entry("it holds more than {cap} persistent ids", "其中的持久化标识超过了 {cap} 个"),
    "pickle.too_many_opcodes": _entry("it holds more than {cap} opcodes (the cap)", "其中的操作码超过了上限 {cap} 个"),
    # a value a pickle or submission.toml holds, described (pickle_scan.describe, manifest._shown)
    "value.long_number": _entry("a {bits}-bit number", "一个 {bits} 位的数"),
    "value.tuple": _entry("a tuple of {count} items", "一个含 {count} 项的元组"),
    "value.not_plain": _entry("something that is not a plain value", "不是普通值的东西"),
    "value.of_type": _entry("a {kind}", "{kind} 类型的值"),  # a value of submission.toml, by its type
    # --- archives ---------------------------------------------------------------------------
    "archive.unreadable_zip": _entry(
        "{file} is not a readable zip archive ({reason})", "{file} 不是可读取的 zip 压缩包（{reason}）",
        ("zip the folder again (truncated uploads are common) and re-submit",
         "请重新打包文件夹后再提交（上传不完整很常见）")),
    "archive.refused": _entry("{file} was refused: {why}; nothing in it was graded",
                              "{file} 被拒绝：{why}；其中的内容都没有评分", _ARCHIVE),
    "archive.zip_link": _entry(
        "{file} was refused: entry {name} is a symbolic link; links can reach files outside the hand-in; nothing "
        "in it was graded",
        "{file} 被拒绝：其中的 {name} 是符号链接，链接可能指向提交内容以外的文件；其中的内容都没有评分",
        ("zip the files themselves, not links to them (zip without -y)",
         "请打包文件本身，而不是指向它们的链接（zip 不要加 -y）")),
    "archive.tar_symlink": _entry(
        "{file} was refused: entry {name} is a symbolic link to {target}; links can reach files outside the "
        "hand-in; nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 是指向 {target} 的符号链接，链接可能指向提交内容以外的文件；其中的内容都没有评分",
        _TAR_LINKS),
    "archive.tar_hardlink": _entry(
        "{file} was refused: entry {name} is a hard link to {target}; links can reach files outside the hand-in; "
        "nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 是指向 {target} 的硬链接，链接可能指向提交内容以外的文件；其中的内容都没有评分",
        _TAR_LINKS),
    "archive.encrypted": _entry("{file} was refused: entry {name} is encrypted; nothing in it was graded",
                                "{file} 被拒绝：其中的 {name} 是加密的；其中的内容都没有评分",
                                ("zip it again without a password", "请不设密码重新打包")),
    "archive.absolute": _entry(
        "{file} was refused: entry {name} has an absolute path; nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 使用了绝对路径；其中的内容都没有评分",
        ("archive the folder with relative paths", "请用相对路径打包文件夹")),
    "archive.climbs": _entry(
        "{file} was refused: entry {name} climbs out of the archive with '..'; nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 用 '..' 跳出了压缩包；其中的内容都没有评分",
        ("archive the folder with relative paths inside it", "请在文件夹内部用相对路径打包")),
    "archive.corrupt": _entry(
        "{file} was refused: it is corrupt or truncated ({reason}); nothing in it was graded",
        "{file} 被拒绝：压缩包已损坏或不完整（{reason}）；其中的内容都没有评分",
        ("zip the folder again (truncated uploads are common) and re-submit",
         "请重新打包文件夹后再提交（上传不完整很常见）")),
    "archive.too_many_entries": _entry(
        "{file} was refused: it has more than {cap} entries (the cap); nothing in it was graded",
        "{file} 被拒绝：其中的条目超过了上限 {cap} 个；其中的内容都没有评分",
        ("hand in the network, its code and notebook, not the data set or a virtualenv",
         "只提交网络、它的代码和笔记本，不要提交数据集或虚拟环境")),
    # why an archive was refused (archive.refused's {why})
    "archive.unpacks_to": _entry("it unpacks to {size}, over the {cap} cap", "解压后有 {size}，超过了 {cap} 的上限"),
    "archive.overlap": _entry("its entries overlap (they declare {declared} in a {size} file)",
                              "其中的条目互相重叠（在 {size} 的文件中声明了 {declared}）"),
    "archive.entry_kind": _entry("entry {name} is {kind}, which a hand-in has no use for",
                                 "其中的 {name} 是{kind}，提交内容用不到它"),
    "archive.entry_ratio": _entry(
        "entry {name} unpacks {ratio} times its packed size ({size}), over the {cap}:1 cap (a zip bomb?)",
        "其中的 {name} 解压后是压缩大小的 {ratio} 倍（{size}），超过了 {cap}:1 的上限（是 zip 炸弹吗？）"),
    "archive.nul_name": _entry("entry {name} has a NUL byte in its name", "其中的 {name} 的名字里有空字节（`\\0`）"),
    "archive.twice": _entry("entry {name} appears twice, or as both a file and a folder",
                            "其中的 {name} 出现了两次，或者既是文件又是文件夹"),
    "archive.cannot_write": _entry("entry {name} cannot be unpacked here ({reason})",
                                   "其中的 {name} 无法在这里解压（{reason}）"),
    "archive.longer_than_declared": _entry("entry {name} holds more than the {size} bytes it declares",
                                           "其中的 {name} 的实际内容超过了它声明的 {size} 字节"),
    "archive.tar_too_large": _entry("it unpacks to more than {cap} (the cap) by entry {name}",
                                    "解压到其中的 {name} 时已超过 {cap} 的上限"),
    "archive.tar_ratio": _entry(
        "by entry {name} it unpacks {ratio} times its packed size ({size}), over the {cap}:1 cap (a tar bomb?)",
        "解压到其中的 {name} 时，解压后已是压缩大小的 {ratio} 倍（{size}），超过了 {cap}:1 的上限（是 tar 炸弹吗？）"),
    "archive.unpack_failed": _entry(
        "{file}: entry {name} could not be unpacked ({reason})", "{file}：其中的 {name} 无法解压（{reason}）",
        ("free space in the temporary folder (TMPDIR) and grade again", "请清理临时文件夹（TMPDIR）的空间后重新评分")),
    # --- the training history -----------------------------------------------------------------
    "history.failed": _entry("{error}; {error_hint}", "{error}；{error_hint}"),
    "history.missing": _entry("history file {file} is missing", "训练历史文件 {file} 不存在",
                              ("hand it in, or fix history = ... in submission.toml",
                               "请提交它，或改正 submission.toml 中的 history = ...")),
    "history.too_large": _entry("{file} is {size} bytes, too large for a training history",
                                "{file} 有 {size} 字节，作为训练历史太大了",
                                ("log one line per epoch: epoch, train_loss, train_acc, test_acc",
                                 "每个 epoch 记录一行：epoch、train_loss、train_acc、test_acc")),
    "history.refused_pickle": _entry(
        "{file} cannot be read: {reason}", "无法读取 {file}：{reason}",
        ("save the history as lists of numbers: torch.save({{'train_loss': [...], ...}}) or json.dump",
         "请把训练历史保存为数字列表：torch.save({{'train_loss': [...], ...}}) 或 json.dump")),
    "history.unparsable": _entry("{file} cannot be read: {reason}", "无法读取 {file}：{reason}",
                                 ("write JSON or CSV with a header line, see docs/grading.md",
                                  "请写成 JSON，或带表头行的 CSV，见 docs/grading.md")),
    "history.unreadable": _entry("{file} cannot be read: {reason}", "无法读取 {file}：{reason}"),
    "history.too_deep": _entry("{file} cannot be read: it nests lists or objects too deep",
                               "无法读取 {file}：其中的列表或对象嵌套得太深",
                               ("write one list of numbers per key, or one object per epoch",
                                "每个键写一个数字列表，或每个 epoch 写一个对象")),
    "history.no_keys": _entry(
        "{file} holds keys {found}: none is {claimed} (read also as: {aliases}, ...)",
        "{file} 中的键是 {found}：其中没有 {claimed}（也接受这些写法：{aliases} 等）",
        ("log train_loss, train_acc and test_acc once per epoch; docs/grading.md lists every name read",
         "请每个 epoch 记录一次 train_loss、train_acc 和 test_acc；docs/grading.md 列出了所有能识别的名字")),
    "history.list_of_non_objects": _entry("{file}: a list must hold one object per epoch",
                                          "{file}：列表中必须每个 epoch 一个对象", _FORMAT),
    "history.not_lists": _entry("{file}: expected per-epoch lists", "{file}：应为按 epoch 记录的列表",
                                ('e.g. {{"train_loss": [1.2, 0.8], ...}}', '例如 {{"train_loss": [1.2, 0.8], ...}}')),
    "history.not_a_number": _entry("{file}: {key} holds {value}, which is not a number",
                                   "{file}：{key} 中的 {value} 不是数字",
                                   ("write numbers only, one per epoch", "只写数字，每个 epoch 一个")),
    "history.not_finite": _entry("{file}: {key} holds NaN or infinity", "{file}：{key} 中有 NaN 或无穷大",
                                 ("log finite values only", "只记录有限的数值")),
    # why a history saved with torch.save or pickle was not read (history.refused_pickle's {reason})
    "plain.file_over": _entry("it is {size} bytes, over the {cap}-byte cap for a history",
                              "文件有 {size} 字节，超过了训练历史 {cap} 字节的上限"),
    "plain.not_pickle": _entry("it is neither a torch.save file nor a pickle", "它既不是 torch.save 保存的文件，也不是 pickle"),
    "plain.legacy": _entry("it is in torch's legacy format (saved with _use_new_zipfile_serialization=False)",
                           "它是 torch 的旧格式（用 _use_new_zipfile_serialization=False 保存的）"),
    "plain.problems": _entry("{problems}", "{problems}", joiners=("; ", "；")),
    "plain.not_torch_zip": _entry("it is a zip file but not one torch.save wrote", "它是 zip 文件，但不是 torch.save 写出的"),
    "plain.corrupt_zip": _entry("it is a truncated or corrupt zip file ({reason})", "它是不完整或已损坏的 zip 文件（{reason}）"),
    "plain.not_storage": _entry("it holds a persistent id that is not a tensor storage", "其中有一个持久化标识不是张量存储"),
    "plain.storage_short": _entry("storage {key} claims {numel} elements but holds {size} bytes",
                                  "存储 {key} 声称有 {numel} 个元素，但只有 {size} 字节"),
    "plain.opcodes": _entry("it holds over {cap} pickle opcodes", "其中的 pickle 操作码超过了 {cap} 个"),
    "plain.malformed": _entry("it is not a well-formed pickle ({reason})", "它不是格式正确的 pickle（{reason}）"),
    "plain.no_stop": _entry("it is not a well-formed pickle (no STOP opcode)", "它不是格式正确的 pickle（没有 `STOP` 操作码）"),
    "plain.opcode": _entry("it uses the pickle opcode {name}, which plain values never need",
                           "它用了 pickle 操作码 {name}，普通的值从来用不到它"),
    "plain.setitems": _entry("it sets items on something that is not a dict", "它向一个不是字典的对象设置条目"),
    "plain.dict_key": _entry("it holds a dict key that is not a string or a number", "其中有一个字典的键不是字符串或数字"),
    "plain.appends": _entry("it appends to something that is not a list", "它向一个不是列表的对象追加元素"),
    "plain.global_name": _entry("it names a global by something that is not a string", "它用不是字符串的东西指定全局名"),
    "plain.reduce": _entry("it calls something that is not a plain value's constructor", "它调用的不是普通值的构造函数"),
    "plain.build": _entry("it sets the state of something that is not a numpy dtype or array",
                          "它设置了一个既不是 numpy 数据类型也不是数组的对象的状态"),
    "plain.outside": _entry("it refers to data outside the pickle, which a plain pickle never does",
                            "它引用了 pickle 之外的数据，普通的 pickle 从来不会这样做"),
    "plain.number_type": _entry("it holds numbers of type {code}, which a history never needs",
                                "其中有 {code} 类型的数，训练历史从来用不到它"),
    "plain.array_not_plain": _entry("it holds a numpy array that is not plain numbers", "其中有一个 numpy 数组不是普通的数字"),
    "plain.array_shape": _entry("it holds a numpy array whose shape is not plain", "其中有一个 numpy 数组的形状不是普通的整数"),
    "plain.array_bytes": _entry("it holds a numpy array whose shape does not match its bytes",
                                "其中有一个 numpy 数组的形状与它的字节数不符"),
    "plain.too_many_numbers": _entry("its tensors and arrays hold more numbers than a history needs",
                                     "其中的张量和数组包含的数字比训练历史需要的多"),
    "plain.tensor_layout": _entry("it holds a tensor whose layout is not plain", "其中有一个张量的布局不是普通的"),
    "plain.tensor_past": _entry("it holds a tensor that reaches past its storage", "其中有一个张量超出了它的存储"),
    "plain.ordered_dict": _entry("it builds an OrderedDict from something other than nothing",
                                 "它用非空的内容构建 `OrderedDict`"),
    "plain.encode": _entry("it encodes bytes in a way pickle never does", "它编码字节的方式是 pickle 从来不会用的"),
    "plain.dtype_name": _entry("it names a numpy dtype by something that is not a string",
                               "它用不是字符串的东西指定 numpy 数据类型"),
    "plain.dtype": _entry("it names the numpy dtype {code}, which a history never needs",
                          "它指定了 numpy 数据类型 {code}，训练历史从来用不到它"),
    "plain.scalar": _entry("it holds a numpy scalar that is not a plain number", "其中有一个 numpy 标量不是普通的数"),
    "plain.reconstruct": _entry("it rebuilds a numpy object that is not an array", "它重建了一个不是数组的 numpy 对象"),
    "plain.global": _entry(
        "it names {name}, which a file of plain values has no use for (it is how a pickle runs code); nothing in it "
        "was run",
        "它引用了 {name}，只含普通值的文件用不到它（pickle 正是借此运行代码）；其中的内容都没有运行"),
    "plain.too_many_values": _entry("it holds more values than a history needs", "其中的值比训练历史需要的多"),
    "plain.too_deep": _entry("it nests containers deeper than a history needs", "其中容器嵌套的深度超过了训练历史的需要"),
    "plain.bare": _entry("it holds a bare global or storage instead of a value", "其中有一个单独的全局名或存储，而不是值"),
    # --- the student's code --------------------------------------------------------------------
    "code.too_large": _entry("{file} is over {mib} MiB", "{file} 超过了 {mib} MiB",
                             ("hand in the network's code only", "只提交网络的代码")),
    "code.not_utf8": _entry("{file} is not UTF-8 text", "{file} 不是 UTF-8 文本", _UTF8),
    "code.syntax": _entry("{file} is not valid Python (line {line}: {reason})",
                          "{file} 不是有效的 Python 代码（第 {line} 行：{reason}）",
                          ("fix the syntax error; run the file once with python to check",
                           "请改正语法错误；可以先用 Python 运行一次这个文件来检查")),
    "notebook.too_large": _entry("{file} is over {mib} MiB", "{file} 超过了 {mib} MiB",
                                 ("clear the notebook's outputs (Edit > Clear all outputs) and hand it in again",
                                  "请清除笔记本的输出（菜单 `Edit > Clear all outputs`）后重新提交")),
    "notebook.unreadable": _entry("{file} is not a Jupyter notebook ({reason})", "{file} 不是 Jupyter 笔记本（{reason}）",
                                  ("hand in the .ipynb file as Jupyter saved it, or its code as model.py",
                                   "请提交 Jupyter 保存的 .ipynb 文件，或把其中的代码放进 model.py 提交")),
    "notebook.too_many_cells": _entry("{file} has {count} cells, over {limit}", "{file} 有 {count} 个单元格，超过了 {limit} 个",
                                      ("hand in model.py instead", "请改为提交 model.py")),
    "code.failed_at": _entry("{reason} ({file} line {line})", "{reason}（{file} 第 {line} 行）"),
    "code.statement": _entry("line {line}: {text}", "第 {line} 行：{text}"),
    "code.import_failed": _entry("{file} failed to import: {reason}", "导入 {file} 时出错：{reason}",
                                 ("run `python {file}` locally and fix the error", "请在本地运行 `python {file}` 并改正错误")),
    "code.import_time_work": _entry(
        "{file} failed to import: {reason}", "导入 {file} 时出错：{reason}",
        ("{file} runs code when it is imported ({statements}); put the training code under "
         '`if __name__ == "__main__":` so that importing {file} only defines the network (grading has no '
         "network and no data)",
         "{file} 在被导入时就会运行代码（{statements}）；请把训练代码放到 "
         '`if __name__ == "__main__":` 下面，让导入 {file} 时只定义网络（评分时没有网络连接，也没有数据）')),
    "code.class_missing": _entry("the checkpoint names {pickled}, but {name} in {file} is missing, not an nn.Module "
                                 "class",
                                 "检查点中的类是 {pickled}，但 {file} 中没有 {name}",
                                 ("define class {name}(nn.Module) in the code you hand in",
                                  "请在提交的代码中定义 `class {name}(nn.Module)`")),
    "code.class_not_module": _entry(
        "the checkpoint names {pickled}, but {name} in {file} is a {kind}, not an nn.Module class",
        "检查点中的类是 {pickled}，但 {file} 中的 {name} 是 {kind}，不是 nn.Module 类",
        ("define class {name}(nn.Module) in the code you hand in", "请在提交的代码中定义 `class {name}(nn.Module)`")),
    "code.class_elsewhere": _entry(
        "the checkpoint names {pickled}, but {name} in {file} is {defined}, defined elsewhere",
        "检查点中的类是 {pickled}，但 {file} 中的 {name} 是在别处定义的 {defined}",
        ("define class {name}(nn.Module) itself in the code you hand in",
         "请在提交的代码中亲自定义 `class {name}(nn.Module)`")),
    "code.torchvision_lacks": _entry(
        "the checkpoint names {name}, which this torchvision lacks ({reason})",
        "检查点用到了 {name}，而评分环境的 torchvision 中没有它（{reason}）",
        ("save the network with the torchvision the grader pins, or hand in a state_dict",
         "请用评分程序指定的 torchvision 版本保存网络，或提交 state_dict")),
    "entry.builder_failed": _entry("{file}: {name}() failed: {reason}", "{file}：调用 {name}() 时出错：{reason}",
                                   ("{name}() must take no arguments and return the network",
                                    "{name}() 必须不带参数，并返回网络")),
    "entry.builder_offline": _entry(
        "{file}: {name}() failed: {reason}", "{file}：调用 {name}() 时出错：{reason}",
        ("grading has no network: build the network without downloading weights (e.g. "
         "torchvision.models.resnet18(weights=None)); the trained weights are read from your checkpoint",
         "评分时没有网络连接：构建网络时请不要下载权重（例如 torchvision.models.resnet18(weights=None)）；"
         "训练好的权重会从你的检查点读取")),
    "entry.not_a_module": _entry("{file}: {name}() returned a {kind}, not an nn.Module",
                                 "{file}：{name}() 返回的是 {kind}，不是 nn.Module",
                                 ("make {name}() return the network", "请让 {name}() 返回网络")),
    "entry.several_networks": _entry(
        "{file} defines no {name}, and several networks: {names}", "{file} 没有定义 {name}，却定义了多个网络：{names}",
        ('say which one is the network in submission.toml: entry = "{file}:{last}" (or define {name}() returning '
         'it)',
         '请在 submission.toml 中指明哪一个是要评分的网络：entry = "{file}:{last}"（或定义返回它的 {name}()）')),
    "entry.classes_need_args": _entry(
        "{file} defines no {name}, and its network classes ({names}) all need arguments",
        "{file} 没有定义 {name}，而其中的网络类（{names}）都需要参数",
        ("define {name}() that returns the network, e.g. def {name}(): return {last}(...)",
         "请定义返回网络的 {name}()，例如 `def {name}(): return {last}(...)`")),
    "entry.no_network": _entry(
        "{file} defines no {name} and no nn.Module class", "{file} 既没有定义 {name}，也没有定义 nn.Module 类",
        ('define {name}() returning the network, or name yours: entry = "{file}:Net"',
         '请定义返回网络的 {name}()，或指明你的网络：entry = "{file}:Net"')),
    # --- loading the network in the child ------------------------------------------------------
    "load.failed": _entry("{file} could not be loaded as {form}: {reason}", "{file} 无法作为 {form} 加载：{reason}",
                          ("save it again with the same torch version as the grader and re-submit",
                           "请用与评分程序相同的 torch 版本重新保存后再提交")),
    "load.refused_globals": _entry(
        "{file} asks to load something outside the allowed torch.nn classes and was refused without running it "
        "({reason})",
        "{file} 要求加载允许的 torch.nn 类之外的东西，没有运行就被拒绝了（{reason}）",
        ("hand in torch.save(net.state_dict(), 'weights.pth') plus model.py",
         "请提交 torch.save(net.state_dict(), 'weights.pth') 保存的权重和 model.py")),
    "load.unreadable": _entry("{file} could not be read: {reason}", "{file} 无法读取：{reason}",
                              ("the file may be truncated; save it again and re-submit",
                               "文件可能不完整；请重新保存后再提交")),
    "load.not_a_network": _entry("{file} holds a {kind}, not a network", "{file} 中保存的是 {kind}，不是网络",
                                 ("hand in torch.save(net, ...) or a state_dict plus model.py",
                                  "请提交 torch.save(net, ...) 保存的网络，或 state_dict 加 model.py")),
    "load.not_grader_checkpoint": _entry("{file} is not a grader checkpoint", "{file} 不是评分程序写出的检查点",
                                         ("grade the run folder `grader train` wrote",
                                          "请对 `grader train` 写出的运行文件夹评分")),
    "load.unknown_architecture": _entry("{file} names an architecture this grader cannot build: {reason}",
                                        "{file} 指定的网络结构评分程序无法构建：{reason}",
                                        ("grade it with the grader version that wrote it",
                                         "请用写出它的评分程序版本来评分")),
    "load.bad_safetensors": _entry("{file} is not readable safetensors: {reason}", "{file} 不是可读取的 safetensors：{reason}",
                                   ("save it again with safetensors.torch.save_file(net.state_dict(), ...)",
                                    "请用 safetensors.torch.save_file(net.state_dict(), ...) 重新保存")),
    "load.no_state_dict": _entry("{file} holds no state_dict (found: {found})", "{file} 中没有 state_dict（找到的是：{found}）",
                                 ("save net.state_dict(), bare or under one of {keys}",
                                  "请保存 net.state_dict()，直接保存或放在 {keys} 之一下面")),
    "load.shape_mismatch": _entry("{file} does not fit the network: {reason}", "{file} 与网络不匹配：{reason}", _SAME_ARCH),
    "load.keys_mismatch": _entry("{file} does not fit the network: {detail}", "{file} 与网络不匹配：{detail}", _SAME_ARCH),
    "load.shapes_differ": _entry("{file} does not fit the network {code} builds: {shapes}",
                                 "{file} 与 {code} 构建的网络不匹配：{shapes}", _SAME_LAYERS, joiners=("; ", "；")),
    "load.keys_differ": _entry("{file} does not fit the network {code} builds: {detail}",
                               "{file} 与 {code} 构建的网络不匹配：{detail}", _SAME_LAYERS),
    "load.shape_pair": _entry("{key} is {saved} in the file but {built} in the network",
                              "{key} 在文件中是 {saved}，在网络中是 {built}"),
    "load.more_shapes": _entry("{count} more", "另有 {count} 处"),
    "load.missing_keys": _entry("missing keys {keys}", "缺少键 {keys}"),
    "load.unexpected_keys": _entry("unexpected keys {keys}", "多出的键 {keys}"),
    "load.more_keys": _entry("{keys} (+{count} more)", "{keys}（另有 {count} 个）"),
    "load.both_keys": _entry("missing keys {missing}; unexpected keys {unexpected}",
                             "缺少键 {missing}；多出的键 {unexpected}"),
    "load.no_onnxruntime": _entry("{file} is ONNX, and onnxruntime is not installed",
                                  "{file} 是 ONNX 格式，而评分环境没有安装 onnxruntime",
                                  ("pip install 'cifar10-grader[onnx]', or hand in a torch form instead",
                                   "请运行 `pip install 'cifar10-grader[onnx]'`，或改为提交 torch 格式")),
    "load.bad_onnx": _entry("{file} is not a loadable ONNX model: {reason}", "{file} 不是可加载的 ONNX 模型：{reason}",
                            ("export it again with torch.onnx.export and re-submit",
                             "请用 torch.onnx.export 重新导出后再提交")),
    "load.crashed": _entry("the submission crashed the loader: {reason}", "提交的内容让加载程序崩溃了：{reason}",
                           ("run it locally with the same torch version", "请在本地用相同的 torch 版本运行一次")),
    # --- running the network -----------------------------------------------------------------
    "run.out_of_memory": _entry(
        "{what} ran out of memory{cap}", "{what}内存不足{cap}",
        ("a CIFAR-10 network needs far less: look for a huge layer or tensor; a TA whose rubric caps it too low "
         "can raise [limits] memory_mb",
         "CIFAR-10 网络需要的内存远没有这么多：请检查是否有过大的层或张量；如果评分标准的上限太低，"
         "助教可以调高 [limits] memory_mb")),
    "run.the_submission": _entry("the submission", "提交的内容"),
    "run.the_network_batch": _entry("the network, on a batch of {count} images,", "网络在处理一批 {count} 张图像时"),
    "run.memory_cap": _entry(" (the cap here is {size})", "（这里的上限是 {size}）"),
    "run.batch_failed": _entry("the network failed on a batch of {shape} images: {reason}",
                               "网络处理形状为 {shape} 的一批图像时出错：{reason}",
                               ("it must accept float32 (n, 3, 32, 32) input", "它必须接受 float32 的 (n, 3, 32, 32) 输入")),
    "run.not_a_tensor": _entry("the network returned a {kind}, not a tensor", "网络返回的是 {kind}，不是张量",
                               ("forward() must return the logits tensor (n, 10)",
                                "forward() 必须返回 logits 张量 (n, 10)")),
    "run.bad_shape": _entry("the network returned shape {shape} for {count} images",
                            "网络对 {count} 张图像返回的形状是 {shape}", _SHAPE),
    "run.logits_vary_batches": _entry("the network returned {count} different numbers of logits for different batches",
                                      "网络对不同批次返回的 logits 个数不同（共 {count} 种）", _SHAPE),
    "run.logits_vary_images": _entry("the network returned {found} logits for some images and {expected} for others",
                                     "网络对一些图像返回 {found} 个 logits，对另一些返回 {expected} 个", _SHAPE),
    "run.too_slow": _entry("{file}: loading and running the network took too long ({reason})",
                           "{file}：加载和运行网络用时太长（{reason}）",
                           ("make sure forward() finishes; the homework network needs a few seconds",
                            "请确保 forward() 能运行结束；作业中的网络只需要几秒钟")),
    "run.too_slow_import": _entry(
        "{file}: loading and running the network took too long ({reason})", "{file}：加载和运行网络用时太长（{reason}）",
        ("{code} runs code when it is imported ({statements}); put the training code under "
         '`if __name__ == "__main__":` so that importing {code} only defines the network (grading has no '
         "network and no data)",
         "{code} 在被导入时就会运行代码（{statements}）；请把训练代码放到 "
         '`if __name__ == "__main__":` 下面，让导入 {code} 时只定义网络（评分时没有网络连接，也没有数据）')),
    "run.child_failed": _entry("{file}: the grading child process failed: {reason}",
                               "{file}：评分子进程失败：{reason}",
                               ("run your network locally; it must not exit the process or exhaust memory",
                                "请在本地运行你的网络；它不能退出进程，也不能耗尽内存")),
    "run.extra_reply": _entry("{file}: the grading child sent a reply the grader did not ask for",
                              "{file}：评分子进程发来了评分程序没有请求的回复",
                              ("code in the submission that writes to the grader's reply descriptor cannot be "
                               "graded; remove it", "提交的代码向评分程序的回复通道写入内容，无法评分；请删掉这段代码")),
    "run.malformed_reply": _entry(
        "{file}: the grading child's reply is malformed ({reason})", "{file}：评分子进程的回复格式不对（{reason}）",
        ("code in the submission that writes to the process's output or alters the grader's reply cannot be "
         "graded; remove it",
         "提交的代码向进程输出写入内容或改动了评分程序的回复，无法评分；请删掉这段代码")),
    # what is wrong with the child's reply (run.malformed_reply's {reason}, run.no_reply's)
    "reply.field_type": _entry("{key} is {kind}", "{key} 的类型是 {kind}"),
    "reply.negative": _entry("{key} is negative", "{key} 是负数"),
    "reply.notes_type": _entry("notes holds a non-string", "`notes` 中有不是字符串的项"),
    "reply.layers_type": _entry("layers holds a non-object", "`layers` 中有不是对象的项"),
    "reply.too_many_blocks": _entry("blocks holds more than {cap} names", "`blocks` 中的名字超过了 {cap} 个"),
    "reply.block_name": _entry("blocks holds a class name that is not text of at most {chars} characters",
                               "`blocks` 中有一个类名不是不超过 {chars} 个字符的文本"),
    "reply.not_finite": _entry("it holds a NaN or infinite number", "其中有 NaN 或无穷大的数"),
    "protocol.magic": _entry("the frame does not start with the protocol's magic bytes", "数据帧的开头不是协议规定的魔数字节"),
    "protocol.truncated": _entry("the frame is truncated", "数据帧不完整"),
    "protocol.header_size": _entry("the frame's header is truncated or too large", "数据帧的头部不完整或太大"),
    "protocol.header_json": _entry("the frame's header is not JSON ({kind})", "数据帧的头部不是 JSON（{kind}）"),
    "protocol.header_deep": _entry("the frame's header nests too deep to read", "数据帧的头部嵌套太深，无法读取"),
    "protocol.header_object": _entry("the frame's header is not a JSON object", "数据帧的头部不是 JSON 对象"),
    "protocol.array_unreadable": _entry("the frame's array cannot be read ({kind})", "无法读取数据帧中的数组（{kind}）"),
    "protocol.array_objects": _entry("the frame's array holds objects or has a negative shape",
                                     "数据帧中的数组包含对象，或形状有负数"),
    "protocol.array_size": _entry("the frame's array has a different size than its header says",
                                  "数据帧中数组的大小与头部所写的不同"),
    "logits.dims": _entry("the network's output has {ndim} dimensions, expected 2 (images, {classes} logits)",
                          "网络的输出有 {ndim} 个维度，应为 2 个（图像数，{classes} 个 logits）",
                          ("the last layer must output {classes} logits per image, shape (n, {classes})",
                           "最后一层必须对每张图像输出 {classes} 个 logits，形状为 (n, {classes})")),
    "logits.classes": _entry("the network outputs {found} logits per image, expected {classes}",
                             "网络对每张图像输出 {found} 个 logits，应为 {classes} 个",
                             ("the last layer must output {classes} logits per image, one per CIFAR-10 class",
                              "最后一层必须对每张图像输出 {classes} 个 logits，每个 CIFAR-10 类别一个")),
    "logits.rows": _entry("the network did not return one row of logits per image",
                          "网络没有为每张图像返回一行 logits",
                          ("forward() must return shape (n, {classes}) for a batch of n images",
                           "对一批 n 张图像，forward() 必须返回形状 (n, {classes})")),
    "logits.dtype": _entry("the network's output has dtype {dtype}, not float", "网络输出的数据类型是 {dtype}，不是浮点数",
                           ("return the raw logits (float), not class indices", "请返回原始 logits（浮点数），而不是类别编号")),
    "logits.not_finite": _entry(
        "the network's output holds {what} for {share} of the images", "网络对 {share} 的图像输出了{what}",
        ("check the weights for NaN or infinity (a diverged training run: re-train with a lower learning rate) "
         "and the forward for a division by zero or log(0)",
         "请检查权重中是否有 NaN 或无穷大（训练发散了：请用更小的学习率重新训练），"
         "以及 forward 中是否有除以零或 log(0)")),
    "logits.nan": _entry("NaN", "NaN"),
    "logits.inf": _entry("infinite values", "无穷大"),
    "logits.nan_inf": _entry("NaN and infinite values", "NaN 和无穷大"),
    # --- why the sandbox ended a run ------------------------------------------------------------
    "sandbox.output": _entry("output over {size}", "输出超过了 {size}"),
    "sandbox.wall": _entry("killed after {seconds} s wall clock", "运行 {seconds} 秒后被强制结束"),
    "sandbox.memory": _entry("memory limit of {size} exceeded", "超出了 {size} 的内存上限"),
    "sandbox.cpu": _entry("CPU time limit of {seconds} s exceeded", "超出了 {seconds} 秒的 CPU 时间上限"),
    "sandbox.file_size": _entry("file size limit of {size} exceeded", "超出了 {size} 的文件大小上限"),
    "sandbox.signal": _entry("killed by signal {signal}", "被信号 {signal} 终止"),
    "sandbox.exit": _entry("exited with status {status}", "进程以状态 {status} 退出"),
    "sandbox.exit_said": _entry("exited with status {status}: {said}", "进程以状态 {status} 退出：{said}"),
    "run.no_reply": _entry("it sent no valid reply ({reason})", "它没有发回有效的回复（{reason}）"),
    "run.child_failed_output": _entry(
        "{file}: the grading child process failed: {reason}; last output: {output}",
        "{file}：评分子进程失败：{reason}；最后的输出：{output}",
        ("run your network locally; it must not exit the process or exhaust memory",
         "请在本地运行你的网络；它不能退出进程，也不能耗尽内存")),
    # --- the fence around inspection -----------------------------------------------------------
    "fence.wall": _entry("{what} took longer than {seconds} s and was stopped", "{what}用时超过 {seconds} 秒，已被停止",
                         _PLAIN_FILES),
    "fence.cpu": _entry("{what} took more than {seconds} s of CPU time and was stopped",
                        "{what}占用的 CPU 时间超过 {seconds} 秒，已被停止", _PLAIN_FILES),
    "fence.died": _entry("{what} failed ({how}) before it could say why", "{what}失败了（{how}），没能说明原因",
                         _PLAIN_FILES),
    "fence.killed_by": _entry("killed by {signal}", "被信号 {signal} 终止"),  # fence.died's {how}
    "fence.killed": _entry("killed", "被终止"),
    "fence.exit_status": _entry("exit status {status}", "退出状态为 {status}"),
    "fence.memory": _entry("{what} needed more than {size} of memory and was stopped",
                           "{what}需要的内存超过 {size}，已被停止", _PLAIN_FILES),
    "fence.nesting": _entry("{what} was stopped: something in it nests too deep to read",
                            "{what}被停止：其中有嵌套太深、无法读取的内容",
                            ("hand in plain files: the network, its code and its training log",
                             "请提交普通文件：网络、它的代码和训练日志")),
    "fence.inspecting": _entry("inspecting {file}", "检查 {file} "),
    # --- this machine's sandbox ---------------------------------------------------------------------
    "sandbox.no_bwrap": _entry(
        "bubblewrap (bwrap) is not on PATH; submissions cannot be sandboxed",
        "找不到 bubblewrap（bwrap）：无法在沙盒中运行提交的内容",
        ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), or pass "
         "--no-sandbox to run untrusted code without it (not advised)",
         "请安装 bubblewrap（Debian/Ubuntu：`apt-get install bubblewrap`；Fedora：`dnf install bubblewrap`），"
         "或加上 `--no-sandbox` 在没有沙盒的情况下运行不可信的代码（不建议）")),
    "sandbox.cannot_create": _entry(
        "bubblewrap ({bwrap}) cannot create a sandbox here: {reason}",
        "bubblewrap（{bwrap}）无法在这台机器上创建沙盒：{reason}",
        ("allow unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone; "
         "in Docker, --security-opt seccomp=unconfined), or pass --no-sandbox (not advised)",
         "请允许非特权用户命名空间（sysctl `user.max_user_namespaces`、`kernel.unprivileged_userns_clone`；"
         "在 Docker 中加上 `--security-opt seccomp=unconfined`），或加上 `--no-sandbox`（不建议）")),
    # --- grader.check in a notebook --------------------------------------------------------------
    "check.no_data": _entry(
        "no CIFAR-10 copy: {variable} is not set and the grader cache ({cache}) holds no download",
        "没有 CIFAR-10 数据：没有设置 {variable}，评分程序的缓存（{cache}）中也没有下载好的数据",
        ("set os.environ['{variable}'] = '/path/to/cifar-10-python.tar.gz' before calling grader.check (or pass "
         "data='...'), or run `grader data prepare` once in a terminal",
         "请在调用 grader.check 之前设置 `os.environ['{variable}'] = '/path/to/cifar-10-python.tar.gz'`"
         "（或传入 `data='...'`），或在终端中运行一次 `grader data prepare`")),
    "check.no_sandbox": _entry(
        "{problem}", "{problem}",
        ("grader.check runs your network only in the sandbox, as the TA's grade does: install bubblewrap "
         "(Debian/Ubuntu: sudo apt-get install bubblewrap) and run the cell again; in Docker or Colab without user "
         "namespaces, hand in the files and let the TA grade them",
         "grader.check 只在沙盒中运行你的网络，和助教评分时一样：请安装 bubblewrap（Debian/Ubuntu："
         "`sudo apt-get install bubblewrap`）后重新运行这个单元格；在没有用户命名空间的 Docker 或 Colab 中，"
         "请直接提交文件，由助教评分")),
    "check.not_a_module": _entry("grader.check needs the network, an nn.Module; got {kind}",
                                 "grader.check 需要的是网络（nn.Module），传入的却是 {kind}",
                                 ("pass the trained model object: result = grader.check(net, history=hist)",
                                  "请传入训练好的模型对象：`result = grader.check(net, history=hist)`")),
    "check.unpicklable": _entry(
        "the network cannot be saved whole with torch.save ({reason})", "网络无法用 torch.save 整个保存（{reason}）",
        ("keep lambdas, open files and generators out of the network's attributes; or " + _CLASS[0],
         "不要把 lambda、打开的文件和生成器放在网络的属性中；或者" + _CLASS[1])),
    "check.several_modules": _entry("the network's classes come from several modules ({modules})",
                                    "网络的类来自多个模块（{modules}）", _CLASS),
    "check.package_module": _entry("the network's classes come from the package module {module}",
                                   "网络的类来自包中的模块 {module}", _CLASS),
    "check.source_missing": _entry(
        "the source of class {names} was not found (defined in {module}, perhaps inside a function or by exec)",
        "找不到类 {names} 的源代码（定义在 {module} 中，可能是在函数内部或用 `exec` 定义的）", _CLASS),
    "check.history_suffix": _entry("history {file} is not a .json, .csv, .pt or .pth file",
                                   "训练历史 {file} 不是 .json、.csv、.pt 或 .pth 文件", _HISTORY),
    "check.history_type": _entry("history is a {kind}", "训练历史的类型是 {kind}", _HISTORY),
    "check.history_value": _entry("{where} holds a value of type {kind}, not a number",
                                  "{where} 中有一个 {kind} 类型的值，不是数字", _HISTORY),
    # --- notes: how the hand-in was read -------------------------------------------------------
    "note.prefixes_stripped": _entry("stripped {prefixes} prefixes from {file}'s keys",
                                     "已去掉 {file} 中键名的 {prefixes} 前缀"),
    "note.built_instead": _entry("built {file}'s {built}() (no {name})",
                                 "构建的是 {file} 中的 {built}()（没有 {name}）"),
    "note.pickled_classes": _entry("the whole pickled network's classes: {classes}",
                                   "整个保存的网络用到的类：{classes}"),
    "note.pickled_class": _entry("{name} from {origin}", "{origin} 中的 {name}"),
    "note.export_mode": _entry("the exported program's train/eval mode was fixed when it was exported",
                               "导出程序的 train/eval 模式在导出时就已固定"),
    "note.history_renamed": _entry("{file}: read {renamed}", "{file}：把 {renamed}"),
    "note.history_as": _entry("{written} as {key}", "{written} 读作 {key}"),
    "note.history_ignored": _entry("{file}: ignored {key}, read {chosen} as {target}",
                                   "{file}：忽略了 {key}，把 {chosen} 读作 {target}"),
    "note.history_percent": _entry("{file}: {key} is in percent (up to {top}): divided by 100",
                                   "{file}：{key} 是百分数（最大为 {top}），已除以 100"),
    "note.history_unread": _entry("the history was not read, so the checks on it fail (the network is graded): "
                                  "{error}; {error_hint}",
                                  "没有读取训练历史，因此依赖它的检查项不通过（网络本身照常评分）：{error}；{error_hint}"),
    "note.history_unread_bare": _entry("the history was not read, so the checks on it fail (the network is graded): "
                                       "{error}", "没有读取训练历史，因此依赖它的检查项不通过（网络本身照常评分）：{error}"),
    "note.reordered": _entry("the network's outputs were reordered into CIFAR-10's class order; submission.toml "
                             "gives them as {classes}",
                             "网络的输出已按 CIFAR-10 的类别顺序重新排列；submission.toml 中给出的顺序是 {classes}"),
    "note.diagnosed_fix": _entry(
        "graded with the diagnosed fix ({fix}), as the rubric allows, less {penalty} of the points; as handed in "
        "it scored {accuracy}",
        "按评分标准的允许，采用诊断出的修正（{fix}）评分，扣除 {penalty} 的分数；按原样提交的准确率是 {accuracy}"),
    # --- batch: why a student's grading process gave no grade ----------------------------------
    "batch.memory": _entry("used more than the {limit} MiB memory limit and was stopped",
                           "使用的内存超过了 {limit} MiB 的上限，已被终止"),
    "batch.timeout": _entry("took longer than the {limit} s limit and was stopped",
                            "运行时间超过了 {limit} 秒的上限，已被终止"),
    "batch.crashed": _entry("the grader failed on this submission: {error}", "评分程序处理这份提交时出错：{error}"),
    "batch.killed": _entry("the grading process was killed by {signal}", "评分进程被信号 {signal} 终止"),
    "batch.killed_oom": _entry("the grading process was killed by {signal} (the system may have run out of memory)",
                               "评分进程被信号 {signal} 终止（系统可能内存不足）"),
    "batch.lost": _entry("the grader lost track of the grading process (no exit status); run the batch again to "
                         "grade it", "评分程序失去了评分进程的退出状态；请重新运行批量评分来为它评分"),
    "batch.exit_code": _entry("the grading process exited with code {code} without finishing",
                              "评分进程以退出码 {code} 结束，没有完成评分"),
    "batch.worker_failed": _entry("the Dask worker failed: {error}", "Dask 工作进程出错：{error}"),
    "batch.no_results": _entry("no results were written; run the batch again", "没有写出评分结果；请重新运行批量评分"),
    "batch.id_claimed_twice": _entry(
        "{file} claims the student id {student}, which {other} also claims; graded as {renamed}: check who handed in "
        "which",
        "{file} 声明的学号 {student} 也被 {other} 声明了；已按 {renamed} 评分：请核对这两份作业分别是谁交的"),
    "batch.noted": _entry("{note}; {error}", "{note}；{error}"),  # a note for the TA before a row's error
    "batch.link_out": _entry("{file} is a link to something outside the class folder; it was not read (hand in "
                             "the file itself)", "{file} 是指向班级文件夹之外的链接，没有读取（请提交文件本身）"),
}


def say(key: str, /, **args: Any) -> "Message":
    """The catalogue's ``key`` said with ``args``: a Message (English text, key and arguments).

    Raises:
        KeyError: ``key`` is not in the catalogue, or an argument its templates use is missing.
    """
    return Message(key, args)


class Message(str):
    """A catalogue message: the English text itself, carrying ``key`` and ``args`` so that it can
    be said in another language. Pickles (and deep-copies) by key and arguments."""

    key: str
    args: Mapping[str, Any]

    def __new__(cls, key: str, args: Mapping[str, Any] | None = None):
        entry = CATALOGUE[key]
        args = dict(args or {})
        self = super().__new__(cls, _fill(entry.en, args, "en", entry.joiners[0]))
        self.key, self.args = key, MappingProxyType(args)
        return self

    def __reduce__(self):
        return Message, (self.key, dict(self.args))

    def text(self, lang: str = "en") -> str:
        """The message in ``lang`` (English for a language the catalogue lacks)."""
        return _fill(_template(self.key, lang, hint=False), self.args, lang, _joiner(self.key, lang))

    def hint(self, lang: str = "en") -> str:
        """What to do about it, in ``lang``; "" when the entry gives no hint."""
        return _fill(_template(self.key, lang, hint=True), self.args, lang, _joiner(self.key, lang))

    def mapped(self, change) -> "Message":
        """The same message with ``change`` applied to every string argument (nested ones too)."""
        return Message(self.key, {name: _mapped(value, change) for name, value in self.args.items()})

    def to_json(self) -> dict:
        """``{"key", "args"}``; a nested Message as the same object, a list argument as a list."""
        return {"key": self.key, "args": {name: _json_arg(value) for name, value in self.args.items()}}

    @classmethod
    def from_json(cls, obj: Any, *, untrusted: bool = False, depth: int = 0) -> "Message | None":
        """The Message ``obj`` (``to_json``'s form) holds, or None when its key is unknown or its
        arguments are not the entry's names with string, number, list or nested-message values
        (nested at most NESTING deep). ``untrusted`` (a note or an error from the sandboxed child):
        strings of at most ARG_CHARS and lists of at most LIST_ITEMS too."""
        if depth > NESTING or not (isinstance(obj, Mapping) and isinstance(obj.get("key"), str)
                                   and obj["key"] in CATALOGUE and isinstance(obj.get("args"), Mapping)):
            return None
        if set(obj["args"]) != CATALOGUE[obj["key"]].fields():
            return None
        args = {}
        for name, value in obj["args"].items():
            if isinstance(value, list) and (not untrusted or len(value) <= LIST_ITEMS):
                value = [_read_arg(item, untrusted, depth) for item in value]
                value = None if any(item is None for item in value) else tuple(value)
            else:
                value = _read_arg(value, untrusted, depth)
            if value is None:
                return None
            args[name] = value
        try:
            return cls(obj["key"], args)
        except (KeyError, ValueError):  # a plain string where the template wants a message's hint
            return None


def _mapped(value: Any, change) -> Any:
    if isinstance(value, Message):
        return value.mapped(change)
    if isinstance(value, (list, tuple)):
        return tuple(_mapped(item, change) for item in value)
    return change(value) if isinstance(value, str) else value


def _json_arg(value: Any) -> Any:
    if isinstance(value, Message):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_json_arg(item) for item in value]
    return value


def _read_arg(value: Any, untrusted: bool, depth: int) -> Any:
    """One argument read back: a nested Message, a string or a finite number; None for anything else."""
    if isinstance(value, Mapping):
        return Message.from_json(value, untrusted=untrusted, depth=depth + 1)
    return value if _plain_arg(value, untrusted) else None


def _plain_arg(value: Any, untrusted: bool) -> bool:
    if isinstance(value, str):
        return not untrusted or len(value) <= ARG_CHARS
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _template(key: str, lang: str, *, hint: bool) -> str:
    entry = CATALOGUE[key]
    lang = lang if lang in LANGS else "en"
    return getattr(entry, f"hint_{lang}" if hint else lang)


def _joiner(key: str, lang: str) -> str:
    return CATALOGUE[key].joiners[LANGS.index(lang) if lang in LANGS else 0]


def _fill(template: str, args: Mapping[str, Any], lang: str, joiner: str) -> str:
    values = {}
    for name, value in args.items():
        if isinstance(value, Message):
            values[name], values[f"{name}_hint"] = value.text(lang), value.hint(lang)
        elif isinstance(value, (list, tuple)):
            values[name] = joiner.join(item.text(lang) if isinstance(item, Message) else str(item) for item in value)
        else:
            values[name] = value
    return template.format_map(values)


def rewritten(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new``, in a Message's arguments too (a Message stays one)."""
    if isinstance(text, Message):
        return text.mapped(lambda value: value.replace(old, new))
    return text.replace(old, new)


@dataclass(frozen=True)
class Shown:
    """A message for one reader: what went wrong, what to do, and a lead-in saying that the text
    is the grader's own English (only for a message without a catalogue entry, in another language)."""

    message: str
    hint: str
    lead: str = ""


def error_for(detail: Message | None, text: str, lang: str) -> Shown:
    """``detail`` said in ``lang``; without one, ``text`` (a GraderError's 'what\\n  hint: do')
    split into what and hint, with ``RAW_LEAD`` for a reader of another language."""
    if detail is not None:
        return Shown(detail.text(lang), detail.hint(lang))
    what, sep, hint = (text or "").partition("hint:")
    return Shown(what.strip(), hint.strip() if sep else "", RAW_LEAD.get(lang, ""))


def error_text(detail: Message | None, text: str, lang: str) -> str:
    """``error_for`` as one text: the lead-in, what went wrong, and the hint on a line of its own
    (in English exactly a GraderError's ``str``)."""
    said_here = error_for(detail, text, lang)
    hint = f"\n  {HINT_LABEL.get(lang, HINT_LABEL['en'])}{said_here.hint}" if said_here.hint else ""
    return f"{said_here.lead}{said_here.message}{hint}"


def said(note: str, lang: str) -> str:
    """A note in ``lang``: a Message said again, other text as written (under ``RAW_LEAD``)."""
    if isinstance(note, Message):
        return note.text(lang)
    return f"{RAW_LEAD.get(lang, '')}{note}"


def notes_detail(notes) -> list[dict | None]:
    """results.json's ``notes_detail``: each note's ``{key, args}``, None for one without an entry."""
    return [note.to_json() if isinstance(note, Message) else None for note in notes]


def read_notes(texts, details, *, untrusted: bool = False) -> tuple[str, ...]:
    """Notes from their English ``texts`` and ``details`` (``notes_detail``, possibly absent or
    from the child): a detail that reads as a Message replaces its text, any other keeps it."""
    details = list(details) if isinstance(details, (list, tuple)) and len(details) == len(texts) else []
    details += [None] * (len(texts) - len(details))
    return tuple(Message.from_json(detail, untrusted=untrusted) or str(text) for text, detail in zip(texts, details))
