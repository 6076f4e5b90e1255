"""What is wrong with a hand-in before its network is loaded: submission.toml, and finding and
reading the checkpoint.
"""

from __future__ import annotations

from grader.catalogue.common import Entry, FORMAT, PICK, RESAVE, UTF8, entry

ENTRIES: dict[str, Entry] = {
    # --- submission.toml ---------------------------------------------------------------------
    "manifest.not_toml": entry("{file} is not valid TOML: {reason}", "{file} 不是有效的 TOML：{reason}", FORMAT),
    "manifest.too_deep": entry("{file} nests arrays or tables too deep", "{file} 中的数组或表嵌套得太深", FORMAT),
    "manifest.unknown_keys": entry("{file}: unknown key(s) {keys}", "{file}：无法识别的键 {keys}",
                                   ("known keys: {known}", "可用的键：{known}")),
    "manifest.not_string": entry("{file}: {key} must be a string, got {value}",
                                 "{file}：{key} 必须是字符串，实际写的是 {value}",
                                 ('write it in quotes, e.g. {key} = "..."', '请加上引号，例如 {key} = "..."')),
    "manifest.link": entry("{file} is a link; it was not read", "{file} 是一个链接，没有读取",
                           ("hand in {file} itself, not a link to it", "请提交 {file} 文件本身，而不是指向它的链接")),
    "manifest.unreadable": entry("{file} cannot be read ({reason})", "无法读取 {file}（{reason}）",
                                 ("hand in a readable file", "请提交可读的文件")),
    "manifest.too_large": entry("{file} is not a file of at most {kib} KiB", "{file} 不是普通文件，或超过了 {kib} KiB",
                                ("a manifest is a few lines, see docs/grading.md",
                                  "submission.toml 只需要几行，见 docs/grading.md")),
    "manifest.not_utf8": entry("{file} is not UTF-8 text (byte {byte} is not)",
                               "{file} 不是 UTF-8 文本（偏移 {byte} 处的字节不合法）", UTF8),
    "input.not_table": entry("{where} must be a table", "{where} 必须是一个表",
                             ("write [input] with scale, mean, std below it",
                               "请写一行 [input]，并在其下写 scale、mean、std")),
    "input.unknown_keys": entry("{where}: unknown key(s) {keys}", "{where}：无法识别的键 {keys}",
                                ("known: scale, mean, std, channels", "可用的键：scale、mean、std、channels")),
    "input.bad_scale": entry("{where}: scale must be a positive number, got {value}",
                             "{where}：scale 必须是正数，实际写的是 {value}",
                             ("1.0 when the network expects 0..1 pixels, 255.0 for 0..255",
                               "网络的输入像素在 0..1 之间时写 1.0，在 0..255 之间时写 255.0")),
    "input.bad_channels": entry('{where}: channels must be "rgb" or "bgr", got {value}',
                                '{where}：channels 必须是 "rgb" 或 "bgr"，实际写的是 {value}',
                                ('channels = "bgr" for a network trained on OpenCV images, else leave it out',
                                  '用 OpenCV 读取的图像训练的网络写 channels = "bgr"，否则不要写这一行')),
    "input.bad_triple": entry("{where}: {key} must be three numbers (R, G, B){bound}, got {value}",
                              "{where}：{key} 必须是三个数（R、G、B）{bound}，实际写的是 {value}",
                              ("e.g. {key} = [0.5, 0.5, 0.5]", "例如 {key} = [0.5, 0.5, 0.5]")),
    "classes.not_list": entry("{where} must list the {count} class names, got {value}",
                              "{where} 必须列出 {count} 个类别名，实际写的是 {value}",
                              ('in the order of the network\'s outputs, e.g. classes = ["plane", "car", "bird", '
                                '...]; the names: {known}',
                                '按网络输出的顺序排列，例如 classes = ["plane", "car", "bird", ...]；'
                                "可用的类别名：{known}")),
    "classes.alias": entry("{name} (or {alias})", "{name}（或 {alias}）"),
    "classes.unknown": entry("{where}: unknown class name(s) {names}", "{where}：无法识别的类别名 {names}",
                             ("the names: {known}", "可用的类别名：{known}")),
    "classes.repeated": entry("{where} names {repeated} more than once and lacks {missing}",
                              "{where} 中 {repeated} 出现了不止一次，又缺少 {missing}",
                              ("name each class once, in the order of the network's outputs",
                                "每个类别只写一次，按网络输出的顺序排列")),
    "classes.unmatched": entry("classes in submission.toml cannot be matched to the data's classes ({names})",
                               "submission.toml 中的 classes 与数据集的类别（{names}）对不上",
                               ("grade on CIFAR-10, or leave classes out of submission.toml",
                                 "请在 CIFAR-10 上评分，或在 submission.toml 中去掉 classes")),
    "entry.malformed": entry('entry = "{spec}" is not "file.py:callable"',
                             'entry = "{spec}" 不是 "file.py:callable" 的形式',
                             ('e.g. entry = "model.py:Net"', '例如 entry = "model.py:Net"')),
    "entry.file_missing": entry(
        "{weights} holds only weights ({form}), and {file} is missing",
        "{weights} 只包含权重（{form}），而 {file} 不存在",
        ('hand in a folder with model.py defining build_model() that returns the network, or name it in '
         'submission.toml: entry = "file.py:NameOfClassOrFunction"',
         "请提交一个文件夹，其中的 model.py 定义返回网络的 build_model()；或在 submission.toml 中指明："
         'entry = "file.py:类名或函数名"')),
    "path.not_a_name": entry("{key} = {value} is not a file name", "{key} = {value} 不是文件名",
                             ("name a file inside the folder", "请写文件夹中某个文件的名字")),
    "path.outside": entry(
        "{key} = {value} points outside the submission folder (a path or a link that leaves it: another "
        "student's files, say)",
        "{key} = {value} 指向了提交文件夹之外（路径或链接离开了这个文件夹，例如指向其他同学的文件）",
        ("hand in the file itself, inside the folder, and name it relative to the folder",
         "请把文件本身放进文件夹，并写它相对于这个文件夹的路径")),
    # --- finding and reading the checkpoint ---------------------------------------------------
    "hand_in.dangling_link": entry(
        "{file} is a link to {target}, which does not exist", "{file} 是指向 {target} 的链接，而链接的目标不存在",
        ("hand in the file itself (an archive can keep a link and lose what it pointed to)",
         "请提交文件本身（压缩包可能只保留了链接，丢掉了它指向的文件）")),
    "hand_in.missing": entry("{file} does not exist", "{file} 不存在",
                             ("pass the file or folder the student handed in", "请指定学生提交的文件或文件夹")),
    "hand_in.unsafe_folder": entry(
        "{file} was refused: {why}; nothing in it was graded", "{file} 被拒绝：{why}；其中的内容都没有评分",
        ("hand in the network, its code and its training log as plain files in one folder (or a zip of it), "
         "without links",
         "请把网络、代码和训练日志作为普通文件放在一个文件夹里提交（或打包成 zip），不要用链接")),
    "walk.link_out": entry("'{name}' points outside the submission folder (a link that leaves it), and was not read",
                           "'{name}' 指向提交文件夹之外（一个离开该文件夹的链接），没有读取"),
    "walk.link_nowhere": entry("{name} is a link to a folder or to nothing; hand in the files themselves",
                               "{name} 是指向文件夹或不存在之处的链接；请提交文件本身"),
    "walk.too_deep": entry("it nests folders more than {depth} deep ({name})", "文件夹嵌套超过 {depth} 层（{name}）"),
    "walk.unlistable": entry("folder {name} cannot be listed ({reason})", "无法列出文件夹 {name} 的内容（{reason}）"),
    "walk.too_many": entry("it holds more than {cap} files and folders (the cap)",
                           "其中的文件和文件夹超过了上限 {cap} 个"),
    "walk.unreadable": entry("{name} cannot be read ({reason})", "无法读取 {name}（{reason}）"),
    "walk.file_kind": entry("{name} is {kind}, which a hand-in has no use for", "{name} 是{kind}，提交内容用不到它"),
    # what a file is, when it is neither a plain file nor a folder
    "kind.character_device": entry("a character device", "字符设备"),
    "kind.block_device": entry("a block device", "块设备"),
    "kind.fifo": entry("a FIFO", "命名管道"),
    "kind.socket": entry("a socket", "套接字"),
    "kind.sparse": entry("a sparse file", "稀疏文件"),
    "kind.other": entry("not a plain file or folder", "既非普通文件也非文件夹的东西"),
    "weights.no_such_file": entry('weights = "{name}" in submission.toml: no such file in {folder}',
                                  'submission.toml 中的 weights = "{name}"：{folder} 中没有这个文件',
                                  ("fix the name, or hand in the file", "请改正文件名，或提交这个文件")),
    "weights.none": entry("no checkpoint in {folder} (looked for {suffixes})",
                          "{folder} 中没有检查点文件（查找了 {suffixes}）",
                          ("hand in the saved network, e.g. torch.save(net, 'model.pth')",
                            "请提交保存好的网络，例如 torch.save(net, 'model.pth')")),
    "weights.several": entry(
        "{folder} holds several checkpoints and nothing says which one to grade: {names}",
        "{folder} 中有多个检查点文件，但没有指明评哪一个：{names}",
        PICK),
    "weights.several_rubric": entry(
        "{folder} holds several checkpoints and nothing says which one to grade: {names}; the rubric's "
        'weights = "{pattern}" matches {matches}',
        '{folder} 中有多个检查点文件，但没有指明评哪一个：{names}；评分标准的 weights = "{pattern}" 匹配到 {matches}',
        PICK),
    "weights.several_rubric_none": entry(
        "{folder} holds several checkpoints and nothing says which one to grade: {names}; the rubric's "
        'weights = "{pattern}" matches none of them',
        '{folder} 中有多个检查点文件，但没有指明评哪一个：{names}；评分标准的 weights = "{pattern}" 一个也没有匹配到',
        PICK),
    "weights.empty": entry("{file} is empty (0 bytes)", "{file} 是空文件（0 字节）", RESAVE),
    "weights.too_large": entry("{file} is {size} MiB, over the {limit} MiB limit",
                               "{file} 有 {size} MiB，超过了 {limit} MiB 的上限",
                               ("hand in only the trained network", "只提交训练好的网络")),
    "weights.alone": entry(
        "{file} holds only weights ({form}) and was handed in alone, without the code that builds the network",
        "{file} 只包含权重（{form}），而且是单独提交的，没有构建网络的代码",
        ("hand in a folder with the weights and model.py (code beside a lone file is never used: it may be "
         "another student's); a TA can pass --model-code for the whole class",
         "请提交一个包含权重和 model.py 的文件夹（单个文件旁边的代码不会被使用：它可能属于其他同学）；"
         "助教可以用 --model-code 为全班提供代码")),
    "weights.ta_code_unreadable": entry(
        "{file} holds only weights ({form}), and the model code {code} could not be read",
        "{file} 只包含权重（{form}），而模型代码 {code} 无法读取",
        ("--model-code (or the rubric's model_code) must name Python or a notebook that defines the network",
         "--model-code（或评分标准中的 model_code）必须指向定义网络的 Python 文件或笔记本")),
    "form.unknown": entry(
        "{file}: unknown format (its first bytes match none of the formats below)",
        "{file}：无法识别的格式（文件开头的字节与下列格式都不符）",
        ("hand in a torch.save file, safetensors, TorchScript, a .pt2 from torch.export, or ONNX; see "
         "docs/grading.md",
         "请提交 torch.save 保存的文件、safetensors、TorchScript、torch.export 导出的 .pt2 或 ONNX；"
         "见 docs/grading.md")),
    "form.bad_checksum": entry("{file} is corrupt ({member} fails its checksum)",
                               "{file} 已损坏（{member} 的校验和不符）", RESAVE),
    "form.zip_not_checkpoint": entry("{file} is a zip file but not a torch.save checkpoint",
                                     "{file} 是 zip 文件，但不是 torch.save 保存的检查点",
                                     ("hand in the file torch.save wrote, not an archive of files",
                                       "请提交 torch.save 写出的文件，而不是把文件打包成的压缩包")),
    "form.pickle_too_large": entry("{file}: its pickle is {size} bytes, too large to check",
                                   "{file}：其中的 pickle 有 {size} 字节，太大，无法检查",
                                   ("save only the network (or its state_dict)", "只保存网络（或它的 state_dict）")),
    "form.truncated": entry("{file} is truncated or corrupt (its zip directory cannot be read)",
                            "{file} 不完整或已损坏（无法读取它的 zip 目录）",
                            ("save the network again and re-submit; an upload cut short is the usual cause",
                              "请重新保存网络后再提交；通常是上传没有完成")),
    "form.pickle_unreadable": entry("{file} is corrupt: its pickle cannot be read ({reason})",
                                    "{file} 已损坏：其中的 pickle 无法读取（{reason}）", RESAVE),
    "form.missing_class": entry(
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
    "form.foreign_globals": entry(
        "{file} asks to load {names}, outside the allowed torch.nn classes",
        "{file} 要求加载 {names}，不在允许的 torch.nn 类之内",
        ("it was refused without being run; hand in plain weights, stock torch.nn layers, or your network's "
         "class in model.py",
         "文件没有运行就被拒绝了；请提交纯权重、由标准 torch.nn 层组成的网络，或在 model.py 中提供你的网络类")),
    "precheck.refused": entry(
        "{file} was refused before loading: {problems}", "{file} 在加载前被拒绝：{problems}",
        ("save weights with torch.save(model.state_dict(), path) (the default zip format) or safetensors, and "
         "nothing but tensors and plain data",
         "请用 torch.save(model.state_dict(), path)（默认的 zip 格式）或 safetensors 保存权重，"
         "且只保存张量和普通数据"), joiners=("; ", "；")),
    "precheck.over_cap": entry("it is {size}, over the {cap} cap", "文件有 {size}，超过了 {cap} 的上限"),
    "precheck.bare_pickle": entry(
        "it is a bare pickle (pickle.dump), not a torch.save file in the zip or legacy pickle format, and a bare "
        "pickle can run code when loaded",
        "文件是用 pickle.dump 直接保存的 pickle，不是 zip 格式或旧格式的 torch.save 文件，而这样的 pickle "
        "在加载时可能运行代码"),
    "precheck.truncated_storage": entry(
        "it is truncated: storage {key} claims {claimed} but the file holds {held} from there on",
        "文件不完整：存储 {key} 应有 {claimed}，但文件从那里往后只剩 {held}"),
    "precheck.cut_short": entry("it is truncated or corrupt: {what} cannot be read ({reason})",
                                "文件不完整或已损坏：无法读取{what}（{reason}）"),
    "precheck.cut_short_large": entry(
        "{what} cannot be read within the first {limit} of the file ({reason}): too large to check, or corrupt",
        "在文件的前 {limit} 中无法读取{what}（{reason}）：太大无法检查，或已损坏"),
    "precheck.its_facts": entry("its system facts", "其中的系统信息"),
    "precheck.its_pickle": entry("its pickle", "其中的 pickle"),
    "precheck.its_storages": entry("its list of storages", "其中的存储列表"),
    "precheck.foreign_global": entry(
        "{what} refers to {name}, which a weights file has no use for (it is how a pickle runs code)",
        "{what} 引用了 {name}，权重文件用不到它（pickle 正是借此运行代码）"),
    "precheck.bad_pickle": entry("{name} is not a well-formed pickle ({reason})", "{name} 不是格式正确的 pickle（{reason}）"),
    "precheck.legacy_module": entry(
        "it holds a whole network in torch's legacy format, which only an unrestricted (code-running) load can "
        "read; hand in its state_dict",
        "文件以 torch 的旧格式保存了整个网络，只有不受限制（会运行代码）的加载才能读取；请提交它的 state_dict"),
    "precheck.unreadable": entry("cannot read {file}: {reason}", "无法读取 {file}：{reason}"),
    "precheck.too_many_entries": entry("it has more than {cap} zip entries (the cap)", "文件的 zip 条目超过了上限 {cap} 个"),
    "precheck.zip_entries_over": entry("it has {count} zip entries, over the cap of {cap}",
                                       "文件有 {count} 个 zip 条目，超过了 {cap} 个的上限"),
    "precheck.unreadable_zip": entry("it is not a readable zip archive ({reason})", "文件不是可读取的 zip 压缩包（{reason}）"),
    "precheck.pickle_over": entry("{name} is {size}, over the cap of {cap}", "{name} 有 {size}，超过了 {cap} 的上限"),
    "precheck.pickles_over": entry("its pickles hold over {cap} together (the cap)",
                                   "其中的 pickle 合计超过了 {cap} 的上限"),
    "precheck.several_data": entry("it holds {count} data.pkl entries; torch.save writes one",
                                   "其中有 {count} 个 data.pkl 条目，而 torch.save 只写一个"),
    "precheck.stray_pickles": entry(
        "it holds {count} pickle(s) that torch does not read ({names}); a torch.save archive has one data.pkl, "
        "TorchScript adds constants.pkl",
        "其中有 {count} 个 torch 不会读取的 pickle（{names}）；torch.save 的压缩包只有一个 data.pkl，"
        "TorchScript 另有 constants.pkl"),
    "precheck.compressed": entry(
        "entry {name} is compressed ({packed} -> {size} bytes); torch.save stores entries uncompressed",
        "其中的 {name} 是压缩过的（{packed} -> {size} 字节）；torch.save 存储条目时不会压缩"),
    "precheck.outside": entry("entry {name} lies outside the file", "其中的 {name} 位于文件范围之外"),
    "precheck.overlap": entry("its entries declare {declared} in a {size} file (overlapping entries)",
                              "其中的条目在 {size} 的文件中声明了 {declared}（条目互相重叠）"),
    "precheck.no_data_pkl": entry("it has no data.pkl: not a torch.save, TorchScript or torch.export archive",
                                  "其中没有 data.pkl：不是 torch.save、TorchScript 或 torch.export 的压缩包"),
    "precheck.in_pickle": entry("{name}: {problem}", "{name}：{problem}"),
    "precheck.tensors_over": entry("its tensors claim {size}, over the {cap} cap", "其中的张量声称有 {size}，超过了 {cap} 的上限"),
    "precheck.unexpected_id": entry("unexpected persistent id ({value})", "意外的持久化标识（{value}）"),
    "precheck.unexpected_id_in": entry("{what} has an unexpected persistent id ({value})",
                                       "{what}中有意外的持久化标识（{value}）"),
    "precheck.storage_not_key": entry("a storage is named by {value}, not a key", "某个存储用 {value} 命名，而不是用键"),
    "precheck.storage_unknown": entry("storage {key} has an unknown type {kind} or count {count}",
                                      "存储 {key} 的类型 {kind} 或元素个数 {count} 无法识别"),
    "precheck.storage_no_entry": entry("storage {key} has no entry {entry}", "存储 {key} 没有对应的条目 {entry}"),
    "precheck.storage_claims": entry("storage {key} claims {claimed} but its entry holds {held}",
                                     "存储 {key} 声称有 {claimed}，但它的条目只有 {held}"),
    "precheck.storage_two_sizes": entry("storage {key} is named with two different sizes", "存储 {key} 以两种不同的大小出现"),
    "precheck.storage_view_outside": entry("storage {key} has a view outside it", "存储 {key} 的某个视图超出了它的范围"),
    "precheck.storage_count": entry("storage {key} holds {count} elements where its pickle names {numel}",
                                    "存储 {key} 有 {count} 个元素，而 pickle 中写的是 {numel} 个"),
    "precheck.storages_mismatch": entry("its list of storages does not match its pickle (storage {key})",
                                        "其中的存储列表与 pickle 不符（存储 {key}）"),
    "precheck.storages_over": entry("it has {count} storages, over the cap of {cap}",
                                    "文件有 {count} 个存储，超过了 {cap} 个的上限"),
    "precheck.legacy_no_version": entry("it has torch's legacy magic number but no known format version after it",
                                        "文件开头是 torch 旧格式的魔数，但后面没有已知的格式版本"),
    "precheck.not_key_list": entry("not a list of keys", "不是键的列表"),
    "pickle.unreadable_past": entry("it cannot be read past byte {pos} ({kind})",
                                    "第 {pos} 个字节之后无法读取（{kind}）"),
    "pickle.stopped": entry("{reason} (at byte {pos})", "{reason}（在第 {pos} 个字节处）"),
    "pickle.pops_too_much": entry("it pops more than its stack holds", "它从栈中弹出的比栈里有的还多"),
    "pickle.empty_top": entry("it reads the top of an empty stack", "它读取了空栈的栈顶"),
    "pickle.unopened_mark": entry("it closes a MARK it never opened", "它结束了一个从未开始的 `MARK`"),
    "pickle.too_many_globals": entry("it names more than {cap} globals", "它引用的全局名超过了 {cap} 个"),
    "pickle.too_many_ids": entry("it holds more than {cap} persistent ids", "其中的持久化标识超过了 {cap} 个"),
    "pickle.too_many_opcodes": entry("it holds more than {cap} opcodes (the cap)", "其中的操作码超过了上限 {cap} 个"),
    # a value a pickle or submission.toml holds, described (pickle_scan.describe, manifest._shown)
    "value.long_number": entry("a {bits}-bit number", "一个 {bits} 位的数"),
    "value.tuple": entry("a tuple of {count} items", "一个含 {count} 项的元组"),
    "value.not_plain": entry("something that is not a plain value", "不是普通值的东西"),
    "value.of_type": entry("a {kind}", "{kind} 类型的值"),  # a value of submission.toml, by its type
}
