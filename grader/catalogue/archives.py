"""Why a zip or tar hand-in, or a folder, was refused before anything in it was read."""

from __future__ import annotations

from grader.catalogue.common import ARCHIVE, Entry, TAR_LINKS, entry

ENTRIES: dict[str, Entry] = {
    # --- archives ---------------------------------------------------------------------------
    "archive.unreadable_zip": entry(
        "{file} is not a readable zip archive ({reason})", "{file} 不是可读取的 zip 压缩包（{reason}）",
        ("zip the folder again (truncated uploads are common) and re-submit",
         "请重新打包文件夹后再提交（上传不完整很常见）")),
    "archive.refused": entry("{file} was refused: {why}; nothing in it was graded",
                             "{file} 被拒绝：{why}；其中的内容都没有评分", ARCHIVE),
    "archive.zip_link": entry(
        "{file} was refused: entry {name} is a symbolic link; links can reach files outside the hand-in; nothing "
        "in it was graded",
        "{file} 被拒绝：其中的 {name} 是符号链接，链接可能指向提交内容以外的文件；其中的内容都没有评分",
        ("zip the files themselves, not links to them (zip without -y)",
         "请打包文件本身，而不是指向它们的链接（zip 不要加 -y）")),
    "archive.tar_symlink": entry(
        "{file} was refused: entry {name} is a symbolic link to {target}; links can reach files outside the "
        "hand-in; nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 是指向 {target} 的符号链接，链接可能指向提交内容以外的文件；其中的内容都没有评分",
        TAR_LINKS),
    "archive.tar_hardlink": entry(
        "{file} was refused: entry {name} is a hard link to {target}; links can reach files outside the hand-in; "
        "nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 是指向 {target} 的硬链接，链接可能指向提交内容以外的文件；其中的内容都没有评分",
        TAR_LINKS),
    "archive.encrypted": entry("{file} was refused: entry {name} is encrypted; nothing in it was graded",
                               "{file} 被拒绝：其中的 {name} 是加密的；其中的内容都没有评分",
                               ("zip it again without a password", "请不设密码重新打包")),
    "archive.absolute": entry(
        "{file} was refused: entry {name} has an absolute path; nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 使用了绝对路径；其中的内容都没有评分",
        ("archive the folder with relative paths", "请用相对路径打包文件夹")),
    "archive.climbs": entry(
        "{file} was refused: entry {name} climbs out of the archive with '..'; nothing in it was graded",
        "{file} 被拒绝：其中的 {name} 用 '..' 跳出了压缩包；其中的内容都没有评分",
        ("archive the folder with relative paths inside it", "请在文件夹内部用相对路径打包")),
    "archive.corrupt": entry(
        "{file} was refused: it is corrupt or truncated ({reason}); nothing in it was graded",
        "{file} 被拒绝：压缩包已损坏或不完整（{reason}）；其中的内容都没有评分",
        ("zip the folder again (truncated uploads are common) and re-submit",
         "请重新打包文件夹后再提交（上传不完整很常见）")),
    "archive.too_many_entries": entry(
        "{file} was refused: it has more than {cap} entries (the cap); nothing in it was graded",
        "{file} 被拒绝：其中的条目超过了上限 {cap} 个；其中的内容都没有评分",
        ("hand in the network, its code and notebook, not the data set or a virtualenv",
         "只提交网络、它的代码和笔记本，不要提交数据集或虚拟环境")),
    # why an archive was refused (archive.refused's {why})
    "archive.unpacks_to": entry("it unpacks to {size}, over the {cap} cap", "解压后有 {size}，超过了 {cap} 的上限"),
    "archive.overlap": entry("its entries overlap (they declare {declared} in a {size} file)",
                             "其中的条目互相重叠（在 {size} 的文件中声明了 {declared}）"),
    "archive.entry_kind": entry("entry {name} is {kind}, which a hand-in has no use for",
                                "其中的 {name} 是{kind}，提交内容用不到它"),
    "archive.entry_ratio": entry(
        "entry {name} unpacks {ratio} times its packed size ({size}), over the {cap}:1 cap (a zip bomb?)",
        "其中的 {name} 解压后是压缩大小的 {ratio} 倍（{size}），超过了 {cap}:1 的上限（是 zip 炸弹吗？）"),
    "archive.nul_name": entry("entry {name} has a NUL byte in its name", "其中的 {name} 的名字里有空字节（`\\0`）"),
    "archive.twice": entry("entry {name} appears twice, or as both a file and a folder",
                           "其中的 {name} 出现了两次，或者既是文件又是文件夹"),
    "archive.cannot_write": entry("entry {name} cannot be unpacked here ({reason})",
                                  "其中的 {name} 无法在这里解压（{reason}）"),
    "archive.longer_than_declared": entry("entry {name} holds more than the {size} bytes it declares",
                                          "其中的 {name} 的实际内容超过了它声明的 {size} 字节"),
    "archive.tar_too_large": entry("it unpacks to more than {cap} (the cap) by entry {name}",
                                   "解压到其中的 {name} 时已超过 {cap} 的上限"),
    "archive.tar_ratio": entry(
        "by entry {name} it unpacks {ratio} times its packed size ({size}), over the {cap}:1 cap (a tar bomb?)",
        "解压到其中的 {name} 时，解压后已是压缩大小的 {ratio} 倍（{size}），超过了 {cap}:1 的上限（是 tar 炸弹吗？）"),
    "archive.unpack_failed": entry(
        "{file}: entry {name} could not be unpacked ({reason})", "{file}：其中的 {name} 无法解压（{reason}）",
        ("free space in the temporary folder (TMPDIR) and grade again", "请清理临时文件夹（TMPDIR）的空间后重新评分")),
}
