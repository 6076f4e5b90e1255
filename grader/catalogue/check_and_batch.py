"""grader.check in a notebook, the notes on how a hand-in was read, and why a batch's grading
process gave no grade.
"""

from __future__ import annotations

from grader.catalogue.common import CLASS, Entry, HISTORY, entry

ENTRIES: dict[str, Entry] = {
    # --- grader.check in a notebook --------------------------------------------------------------
    "check.no_data": entry(
        "no CIFAR-10 copy: {variable} is not set and the grader cache ({cache}) holds no download",
        "没有 CIFAR-10 数据：没有设置 {variable}，评分程序的缓存（{cache}）中也没有下载好的数据",
        ("set os.environ['{variable}'] = '/path/to/cifar-10-python.tar.gz' before calling grader.check (or pass "
         "data='...'), or run `grader data prepare` once in a terminal",
         "请在调用 grader.check 之前设置 `os.environ['{variable}'] = '/path/to/cifar-10-python.tar.gz'`"
         "（或传入 `data='...'`），或在终端中运行一次 `grader data prepare`")),
    "check.no_sandbox": entry(
        "{problem}", "{problem}",
        ("grader.check runs your network only in the sandbox, as the TA's grade does: install bubblewrap "
         "(Debian/Ubuntu: sudo apt-get install bubblewrap) and run the cell again; in Docker or Colab without user "
         "namespaces, hand in the files and let the TA grade them",
         "grader.check 只在沙盒中运行你的网络，和助教评分时一样：请安装 bubblewrap（Debian/Ubuntu："
         "`sudo apt-get install bubblewrap`）后重新运行这个单元格；在没有用户命名空间的 Docker 或 Colab 中，"
         "请直接提交文件，由助教评分")),
    "check.not_a_module": entry("grader.check needs the network, an nn.Module; got {kind}",
                                "grader.check 需要的是网络（nn.Module），传入的却是 {kind}",
                                ("pass the trained model object: result = grader.check(net, history=hist)",
                                  "请传入训练好的模型对象：`result = grader.check(net, history=hist)`")),
    "check.unpicklable": entry(
        "the network cannot be saved whole with torch.save ({reason})", "网络无法用 torch.save 整个保存（{reason}）",
        ("keep lambdas, open files and generators out of the network's attributes; or " + CLASS[0],
         "不要把 lambda、打开的文件和生成器放在网络的属性中；或者" + CLASS[1])),
    "check.several_modules": entry("the network's classes come from several modules ({modules})",
                                   "网络的类来自多个模块（{modules}）", CLASS),
    "check.package_module": entry("the network's classes come from the package module {module}",
                                  "网络的类来自包中的模块 {module}", CLASS),
    "check.source_missing": entry(
        "the source of class {names} was not found (defined in {module}, perhaps inside a function or by exec)",
        "找不到类 {names} 的源代码（定义在 {module} 中，可能是在函数内部或用 `exec` 定义的）", CLASS),
    "check.history_suffix": entry("history {file} is not a .json, .csv, .pt or .pth file",
                                  "训练历史 {file} 不是 .json、.csv、.pt 或 .pth 文件", HISTORY),
    "check.history_type": entry("history is a {kind}", "训练历史的类型是 {kind}", HISTORY),
    "check.history_value": entry("{where} holds a value of type {kind}, not a number",
                                 "{where} 中有一个 {kind} 类型的值，不是数字", HISTORY),
    # --- notes: how the hand-in was read -------------------------------------------------------
    "note.prefixes_stripped": entry("stripped {prefixes} prefixes from {file}'s keys",
                                    "已去掉 {file} 中键名的 {prefixes} 前缀"),
    "note.built_instead": entry("built {file}'s {built}() (no {name})",
                                "构建的是 {file} 中的 {built}()（没有 {name}）"),
    "note.pickled_classes": entry("the whole pickled network's classes: {classes}",
                                  "整个保存的网络用到的类：{classes}"),
    "note.pickled_class": entry("{name} from {origin}", "{origin} 中的 {name}"),
    "note.export_mode": entry("the exported program's train/eval mode was fixed when it was exported",
                              "导出程序的 train/eval 模式在导出时就已固定"),
    "note.history_renamed": entry("{file}: read {renamed}", "{file}：把 {renamed}"),
    "note.history_as": entry("{written} as {key}", "{written} 读作 {key}"),
    "note.history_ignored": entry("{file}: ignored {key}, read {chosen} as {target}",
                                  "{file}：忽略了 {key}，把 {chosen} 读作 {target}"),
    "note.history_percent": entry("{file}: {key} is in percent (up to {top}): divided by 100",
                                  "{file}：{key} 是百分数（最大为 {top}），已除以 100"),
    "note.history_unread": entry("the history was not read, so the checks on it fail (the network is graded): "
                                 "{error}; {error_hint}",
                                 "没有读取训练历史，因此依赖它的检查项不通过（网络本身照常评分）：{error}；{error_hint}"),
    "note.history_unread_bare": entry("the history was not read, so the checks on it fail (the network is graded): "
                                      "{error}", "没有读取训练历史，因此依赖它的检查项不通过（网络本身照常评分）：{error}"),
    "note.reordered": entry("the network's outputs were reordered into CIFAR-10's class order; submission.toml "
                            "gives them as {classes}",
                            "网络的输出已按 CIFAR-10 的类别顺序重新排列；submission.toml 中给出的顺序是 {classes}"),
    "note.diagnosed_fix": entry(
        "graded with the diagnosed fix ({fix}), as the rubric allows, less {penalty} of the points; as handed in "
        "it scored {accuracy}",
        "按评分标准的允许，采用诊断出的修正（{fix}）评分，扣除 {penalty} 的分数；按原样提交的准确率是 {accuracy}"),
    # --- batch: why a student's grading process gave no grade ----------------------------------
    "batch.memory": entry("used more than the {limit} MiB memory limit and was stopped",
                          "使用的内存超过了 {limit} MiB 的上限，已被终止"),
    "batch.timeout": entry("took longer than the {limit} s limit and was stopped",
                           "运行时间超过了 {limit} 秒的上限，已被终止"),
    "batch.crashed": entry("the grader failed on this submission: {error}", "评分程序处理这份提交时出错：{error}"),
    "batch.killed": entry("the grading process was killed by {signal}", "评分进程被信号 {signal} 终止"),
    "batch.killed_oom": entry("the grading process was killed by {signal} (the system may have run out of memory)",
                              "评分进程被信号 {signal} 终止（系统可能内存不足）"),
    "batch.lost": entry("the grader lost track of the grading process (no exit status); run the batch again to "
                        "grade it", "评分程序失去了评分进程的退出状态；请重新运行批量评分来为它评分"),
    "batch.exit_code": entry("the grading process exited with code {code} without finishing",
                             "评分进程以退出码 {code} 结束，没有完成评分"),
    "batch.worker_failed": entry("the Dask worker failed: {error}", "Dask 工作进程出错：{error}"),
    "batch.no_results": entry("no results were written; run the batch again", "没有写出评分结果；请重新运行批量评分"),
    "batch.id_claimed_twice": entry(
        "{file} claims the student id {student}, which {other} also claims; graded as {renamed}: check who handed in "
        "which",
        "{file} 声明的学号 {student} 也被 {other} 声明了；已按 {renamed} 评分：请核对这两份作业分别是谁交的"),
    "batch.noted": entry("{note}; {error}", "{note}；{error}"),  # a note for the TA before a row's error
    "batch.link_out": entry("{file} is a link to something outside the class folder; it was not read (hand in "
                            "the file itself)", "{file} 是指向班级文件夹之外的链接，没有读取（请提交文件本身）"),
}
