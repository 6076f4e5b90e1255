"""The student's own code (model.py, a notebook, a pickled class), and loading the network in
the grading child.
"""

from __future__ import annotations

from grader.catalogue.common import Entry, SAME_ARCH, SAME_LAYERS, UTF8, entry

ENTRIES: dict[str, Entry] = {
    # --- the student's code --------------------------------------------------------------------
    "code.too_large": entry("{file} is over {mib} MiB", "{file} 超过了 {mib} MiB",
                            ("hand in the network's code only", "只提交网络的代码")),
    "code.not_utf8": entry("{file} is not UTF-8 text", "{file} 不是 UTF-8 文本", UTF8),
    "code.syntax": entry("{file} is not valid Python (line {line}: {reason})",
                         "{file} 不是有效的 Python 代码（第 {line} 行：{reason}）",
                         ("fix the syntax error; run the file once with python to check",
                           "请改正语法错误；可以先用 Python 运行一次这个文件来检查")),
    "notebook.too_large": entry("{file} is over {mib} MiB", "{file} 超过了 {mib} MiB",
                                ("clear the notebook's outputs (Edit > Clear all outputs) and hand it in again",
                                  "请清除笔记本的输出（菜单 `Edit > Clear all outputs`）后重新提交")),
    "notebook.unreadable": entry("{file} is not a Jupyter notebook ({reason})", "{file} 不是 Jupyter 笔记本（{reason}）",
                                 ("hand in the .ipynb file as Jupyter saved it, or its code as model.py",
                                   "请提交 Jupyter 保存的 .ipynb 文件，或把其中的代码放进 model.py 提交")),
    "notebook.too_many_cells": entry("{file} has {count} cells, over {limit}", "{file} 有 {count} 个单元格，超过了 {limit} 个",
                                     ("hand in model.py instead", "请改为提交 model.py")),
    "code.failed_at": entry("{reason} ({file} line {line})", "{reason}（{file} 第 {line} 行）"),
    "code.statement": entry("line {line}: {text}", "第 {line} 行：{text}"),
    "code.import_failed": entry("{file} failed to import: {reason}", "导入 {file} 时出错：{reason}",
                                ("run `python {file}` locally and fix the error", "请在本地运行 `python {file}` 并改正错误")),
    "code.import_time_work": entry(
        "{file} failed to import: {reason}", "导入 {file} 时出错：{reason}",
        ("{file} runs code when it is imported ({statements}); put the training code under "
         '`if __name__ == "__main__":` so that importing {file} only defines the network (grading has no '
         "network and no data)",
         "{file} 在被导入时就会运行代码（{statements}）；请把训练代码放到 "
         '`if __name__ == "__main__":` 下面，让导入 {file} 时只定义网络（评分时没有网络连接，也没有数据）')),
    "code.class_missing": entry("the checkpoint names {pickled}, but {name} in {file} is missing, not an nn.Module "
                                "class",
                                "检查点中的类是 {pickled}，但 {file} 中没有 {name}",
                                ("define class {name}(nn.Module) in the code you hand in",
                                  "请在提交的代码中定义 `class {name}(nn.Module)`")),
    "code.class_not_module": entry(
        "the checkpoint names {pickled}, but {name} in {file} is a {kind}, not an nn.Module class",
        "检查点中的类是 {pickled}，但 {file} 中的 {name} 是 {kind}，不是 nn.Module 类",
        ("define class {name}(nn.Module) in the code you hand in", "请在提交的代码中定义 `class {name}(nn.Module)`")),
    "code.class_elsewhere": entry(
        "the checkpoint names {pickled}, but {name} in {file} is {defined}, defined elsewhere",
        "检查点中的类是 {pickled}，但 {file} 中的 {name} 是在别处定义的 {defined}",
        ("define class {name}(nn.Module) itself in the code you hand in",
         "请在提交的代码中亲自定义 `class {name}(nn.Module)`")),
    "code.torchvision_lacks": entry(
        "the checkpoint names {name}, which this torchvision lacks ({reason})",
        "检查点用到了 {name}，而评分环境的 torchvision 中没有它（{reason}）",
        ("save the network with the torchvision the grader pins, or hand in a state_dict",
         "请用评分程序指定的 torchvision 版本保存网络，或提交 state_dict")),
    "entry.builder_failed": entry("{file}: {name}() failed: {reason}", "{file}：调用 {name}() 时出错：{reason}",
                                  ("{name}() must take no arguments and return the network",
                                    "{name}() 必须不带参数，并返回网络")),
    "entry.builder_offline": entry(
        "{file}: {name}() failed: {reason}", "{file}：调用 {name}() 时出错：{reason}",
        ("grading has no network: build the network without downloading weights (e.g. "
         "torchvision.models.resnet18(weights=None)); the trained weights are read from your checkpoint",
         "评分时没有网络连接：构建网络时请不要下载权重（例如 torchvision.models.resnet18(weights=None)）；"
         "训练好的权重会从你的检查点读取")),
    "entry.not_a_module": entry("{file}: {name}() returned a {kind}, not an nn.Module",
                                "{file}：{name}() 返回的是 {kind}，不是 nn.Module",
                                ("make {name}() return the network", "请让 {name}() 返回网络")),
    "entry.several_networks": entry(
        "{file} defines no {name}, and several networks: {names}", "{file} 没有定义 {name}，却定义了多个网络：{names}",
        ('say which one is the network in submission.toml: entry = "{file}:{last}" (or define {name}() returning '
         'it)',
         '请在 submission.toml 中指明哪一个是要评分的网络：entry = "{file}:{last}"（或定义返回它的 {name}()）')),
    "entry.classes_need_args": entry(
        "{file} defines no {name}, and its network classes ({names}) all need arguments",
        "{file} 没有定义 {name}，而其中的网络类（{names}）都需要参数",
        ("define {name}() that returns the network, e.g. def {name}(): return {last}(...)",
         "请定义返回网络的 {name}()，例如 `def {name}(): return {last}(...)`")),
    "entry.no_network": entry(
        "{file} defines no {name} and no nn.Module class", "{file} 既没有定义 {name}，也没有定义 nn.Module 类",
        ('define {name}() returning the network, or name yours: entry = "{file}:Net"',
         '请定义返回网络的 {name}()，或指明你的网络：entry = "{file}:Net"')),
    # --- loading the network in the child ------------------------------------------------------
    "load.failed": entry("{file} could not be loaded as {form}: {reason}", "{file} 无法作为 {form} 加载：{reason}",
                         ("save it again with the same torch version as the grader and re-submit",
                           "请用与评分程序相同的 torch 版本重新保存后再提交")),
    "load.refused_globals": entry(
        "{file} asks to load something outside the allowed torch.nn classes and was refused without running it "
        "({reason})",
        "{file} 要求加载允许的 torch.nn 类之外的东西，没有运行就被拒绝了（{reason}）",
        ("hand in torch.save(net.state_dict(), 'weights.pth') plus model.py",
         "请提交 torch.save(net.state_dict(), 'weights.pth') 保存的权重和 model.py")),
    "load.unreadable": entry("{file} could not be read: {reason}", "{file} 无法读取：{reason}",
                             ("the file may be truncated; save it again and re-submit",
                               "文件可能不完整；请重新保存后再提交")),
    "load.not_a_network": entry("{file} holds a {kind}, not a network", "{file} 中保存的是 {kind}，不是网络",
                                ("hand in torch.save(net, ...) or a state_dict plus model.py",
                                  "请提交 torch.save(net, ...) 保存的网络，或 state_dict 加 model.py")),
    "load.not_grader_checkpoint": entry("{file} is not a grader checkpoint", "{file} 不是评分程序写出的检查点",
                                        ("grade the run folder `grader train` wrote",
                                          "请对 `grader train` 写出的运行文件夹评分")),
    "load.unknown_architecture": entry("{file} names an architecture this grader cannot build: {reason}",
                                       "{file} 指定的网络结构评分程序无法构建：{reason}",
                                       ("grade it with the grader version that wrote it",
                                         "请用写出它的评分程序版本来评分")),
    "load.bad_safetensors": entry("{file} is not readable safetensors: {reason}", "{file} 不是可读取的 safetensors：{reason}",
                                  ("save it again with safetensors.torch.save_file(net.state_dict(), ...)",
                                    "请用 safetensors.torch.save_file(net.state_dict(), ...) 重新保存")),
    "load.no_state_dict": entry("{file} holds no state_dict (found: {found})", "{file} 中没有 state_dict（找到的是：{found}）",
                                ("save net.state_dict(), bare or under one of {keys}",
                                  "请保存 net.state_dict()，直接保存或放在 {keys} 之一下面")),
    "load.shape_mismatch": entry("{file} does not fit the network: {reason}", "{file} 与网络不匹配：{reason}", SAME_ARCH),
    "load.keys_mismatch": entry("{file} does not fit the network: {detail}", "{file} 与网络不匹配：{detail}", SAME_ARCH),
    "load.shapes_differ": entry("{file} does not fit the network {code} builds: {shapes}",
                                "{file} 与 {code} 构建的网络不匹配：{shapes}", SAME_LAYERS, joiners=("; ", "；")),
    "load.keys_differ": entry("{file} does not fit the network {code} builds: {detail}",
                              "{file} 与 {code} 构建的网络不匹配：{detail}", SAME_LAYERS),
    "load.shape_pair": entry("{key} is {saved} in the file but {built} in the network",
                             "{key} 在文件中是 {saved}，在网络中是 {built}"),
    "load.more_shapes": entry("{count} more", "另有 {count} 处"),
    "load.missing_keys": entry("missing keys {keys}", "缺少键 {keys}"),
    "load.unexpected_keys": entry("unexpected keys {keys}", "多出的键 {keys}"),
    "load.more_keys": entry("{keys} (+{count} more)", "{keys}（另有 {count} 个）"),
    "load.both_keys": entry("missing keys {missing}; unexpected keys {unexpected}",
                            "缺少键 {missing}；多出的键 {unexpected}"),
    "load.no_onnxruntime": entry("{file} is ONNX, and onnxruntime is not installed",
                                 "{file} 是 ONNX 格式，而评分环境没有安装 onnxruntime",
                                 ("pip install 'cifar10-grader[onnx]', or hand in a torch form instead",
                                   "请运行 `pip install 'cifar10-grader[onnx]'`，或改为提交 torch 格式")),
    "load.bad_onnx": entry("{file} is not a loadable ONNX model: {reason}", "{file} 不是可加载的 ONNX 模型：{reason}",
                           ("export it again with torch.onnx.export and re-submit",
                             "请用 torch.onnx.export 重新导出后再提交")),
    "load.crashed": entry("the submission crashed the loader: {reason}", "提交的内容让加载程序崩溃了：{reason}",
                          ("run it locally with the same torch version", "请在本地用相同的 torch 版本运行一次")),
}
