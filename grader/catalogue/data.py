"""Why the CIFAR-10 copy given to the grader cannot be used: what a student checking their own
network in a notebook can meet on their own machine, and the TA on theirs."""

from __future__ import annotations

from grader.catalogue.common import Entry, entry

ENTRIES: dict[str, Entry] = {
    # --- the CIFAR-10 copy -----------------------------------------------------------------------
    "data.not_found": entry(
        "CIFAR-10 source not found: {path}", "找不到 CIFAR-10 数据：{path}",
        ("pass --data PATH or set GRADER_DATA to the official cifar-10-python.tar.gz, its cifar-10-batches-py/ "
         "folder, or an image tree with train/<class>/ and test/<class>/",
         "请用 `--data PATH` 或环境变量 GRADER_DATA 指定官方的 cifar-10-python.tar.gz、其中的 "
         "cifar-10-batches-py/ 文件夹，或按 train/<class>/ 与 test/<class>/ 组织的图像文件夹")),
    "data.not_full": entry(
        "{where}: the {split} split has {count} images ({per_class}); CIFAR-10 has {want}, {per} per class",
        "{where}：{split} 部分有 {count} 张图像（{per_class}）；CIFAR-10 有 {want} 张，每类 {per} 张",
        ("restore the missing files, or pass --partial to accept a subset",
         "请补全缺少的文件，或加上 `--partial` 接受部分数据")),
    "check.partial_data": entry(
        "{problem}", "{problem}",
        ("restore the missing files, or pass partial=True to grader.check to accept a subset (the TA's grade uses "
         "the whole test set)",
         "请补全缺少的文件，或在调用 grader.check 时传入 `partial=True` 接受部分数据（助教评分时使用完整的测试集）")),
}
