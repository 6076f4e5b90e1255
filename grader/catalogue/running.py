"""Running the network, why the sandbox ended a run, the fence around inspection, and this
machine's sandbox.
"""

from __future__ import annotations

from grader.catalogue.common import Entry, PLAIN_FILES, SHAPE, entry

ENTRIES: dict[str, Entry] = {
    # --- running the network -----------------------------------------------------------------
    "run.out_of_memory": entry(
        "{what} ran out of memory{cap}", "{what}内存不足{cap}",
        ("a CIFAR-10 network needs far less: look for a huge layer or tensor; a TA whose rubric caps it too low "
         "can raise [limits] memory_mb",
         "CIFAR-10 网络需要的内存远没有这么多：请检查是否有过大的层或张量；如果评分标准的上限太低，"
         "助教可以调高 [limits] memory_mb")),
    "run.the_submission": entry("the submission", "提交的内容"),
    "run.the_network_batch": entry("the network, on a batch of {count} images,", "网络在处理一批 {count} 张图像时"),
    "run.memory_cap": entry(" (the cap here is {size})", "（这里的上限是 {size}）"),
    "run.batch_failed": entry("the network failed on a batch of {shape} images: {reason}",
                              "网络处理形状为 {shape} 的一批图像时出错：{reason}",
                              ("it must accept float32 (n, 3, 32, 32) input", "它必须接受 float32 的 (n, 3, 32, 32) 输入")),
    "run.not_a_tensor": entry("the network returned a {kind}, not a tensor", "网络返回的是 {kind}，不是张量",
                              ("forward() must return the logits tensor (n, 10)",
                                "forward() 必须返回 logits 张量 (n, 10)")),
    "run.bad_shape": entry("the network returned shape {shape} for {count} images",
                           "网络对 {count} 张图像返回的形状是 {shape}", SHAPE),
    "run.logits_vary_batches": entry("the network returned {count} different numbers of logits for different batches",
                                     "网络对不同批次返回的 logits 个数不同（共 {count} 种）", SHAPE),
    "run.logits_vary_images": entry("the network returned {found} logits for some images and {expected} for others",
                                    "网络对一些图像返回 {found} 个 logits，对另一些返回 {expected} 个", SHAPE),
    "run.too_slow": entry("{file}: loading and running the network took too long ({reason})",
                          "{file}：加载和运行网络用时太长（{reason}）",
                          ("make sure forward() finishes; the homework network needs a few seconds",
                            "请确保 forward() 能运行结束；作业中的网络只需要几秒钟")),
    "run.too_slow_import": entry(
        "{file}: loading and running the network took too long ({reason})", "{file}：加载和运行网络用时太长（{reason}）",
        ("{code} runs code when it is imported ({statements}); put the training code under "
         '`if __name__ == "__main__":` so that importing {code} only defines the network (grading has no '
         "network and no data)",
         "{code} 在被导入时就会运行代码（{statements}）；请把训练代码放到 "
         '`if __name__ == "__main__":` 下面，让导入 {code} 时只定义网络（评分时没有网络连接，也没有数据）')),
    "run.child_failed": entry("{file}: the grading child process failed: {reason}",
                              "{file}：评分子进程失败：{reason}",
                              ("run your network locally; it must not exit the process or exhaust memory",
                                "请在本地运行你的网络；它不能退出进程，也不能耗尽内存")),
    "run.extra_reply": entry("{file}: the grading child sent a reply the grader did not ask for",
                             "{file}：评分子进程发来了评分程序没有请求的回复",
                             ("code in the submission that writes to the grader's reply descriptor cannot be "
                               "graded; remove it", "提交的代码向评分程序的回复通道写入内容，无法评分；请删掉这段代码")),
    "run.malformed_reply": entry(
        "{file}: the grading child's reply is malformed ({reason})", "{file}：评分子进程的回复格式不对（{reason}）",
        ("code in the submission that writes to the process's output or alters the grader's reply cannot be "
         "graded; remove it",
         "提交的代码向进程输出写入内容或改动了评分程序的回复，无法评分；请删掉这段代码")),
    # what is wrong with the child's reply (run.malformed_reply's {reason}, run.no_reply's)
    "reply.field_type": entry("{key} is {kind}", "{key} 的类型是 {kind}"),
    "reply.negative": entry("{key} is negative", "{key} 是负数"),
    "reply.notes_type": entry("notes holds a non-string", "`notes` 中有不是字符串的项"),
    "reply.layers_type": entry("layers holds a non-object", "`layers` 中有不是对象的项"),
    "reply.too_many_blocks": entry("blocks holds more than {cap} names", "`blocks` 中的名字超过了 {cap} 个"),
    "reply.block_name": entry("blocks holds a class name that is not text of at most {chars} characters",
                              "`blocks` 中有一个类名不是不超过 {chars} 个字符的文本"),
    "reply.not_finite": entry("it holds a NaN or infinite number", "其中有 NaN 或无穷大的数"),
    "protocol.magic": entry("the frame does not start with the protocol's magic bytes", "数据帧的开头不是协议规定的魔数字节"),
    "protocol.truncated": entry("the frame is truncated", "数据帧不完整"),
    "protocol.header_size": entry("the frame's header is truncated or too large", "数据帧的头部不完整或太大"),
    "protocol.header_json": entry("the frame's header is not JSON ({kind})", "数据帧的头部不是 JSON（{kind}）"),
    "protocol.header_deep": entry("the frame's header nests too deep to read", "数据帧的头部嵌套太深，无法读取"),
    "protocol.header_object": entry("the frame's header is not a JSON object", "数据帧的头部不是 JSON 对象"),
    "protocol.array_unreadable": entry("the frame's array cannot be read ({kind})", "无法读取数据帧中的数组（{kind}）"),
    "protocol.array_objects": entry("the frame's array holds objects or has a negative shape",
                                    "数据帧中的数组包含对象，或形状有负数"),
    "protocol.array_size": entry("the frame's array has a different size than its header says",
                                 "数据帧中数组的大小与头部所写的不同"),
    "logits.dims": entry("the network's output has {ndim} dimensions, expected 2 (images, {classes} logits)",
                         "网络的输出有 {ndim} 个维度，应为 2 个（图像数，{classes} 个 logits）",
                         ("the last layer must output {classes} logits per image, shape (n, {classes})",
                           "最后一层必须对每张图像输出 {classes} 个 logits，形状为 (n, {classes})")),
    "logits.classes": entry("the network outputs {found} logits per image, expected {classes}",
                            "网络对每张图像输出 {found} 个 logits，应为 {classes} 个",
                            ("the last layer must output {classes} logits per image, one per CIFAR-10 class",
                              "最后一层必须对每张图像输出 {classes} 个 logits，每个 CIFAR-10 类别一个")),
    "logits.rows": entry("the network did not return one row of logits per image",
                         "网络没有为每张图像返回一行 logits",
                         ("forward() must return shape (n, {classes}) for a batch of n images",
                           "对一批 n 张图像，forward() 必须返回形状 (n, {classes})")),
    "logits.dtype": entry("the network's output has dtype {dtype}, not float", "网络输出的数据类型是 {dtype}，不是浮点数",
                          ("return the raw logits (float), not class indices", "请返回原始 logits（浮点数），而不是类别编号")),
    "logits.not_finite": entry(
        "the network's output holds {what} for {share} of the images", "网络对 {share} 的图像输出了{what}",
        ("check the weights for NaN or infinity (a diverged training run: re-train with a lower learning rate) "
         "and the forward for a division by zero or log(0)",
         "请检查权重中是否有 NaN 或无穷大（训练发散了：请用更小的学习率重新训练），"
         "以及 forward 中是否有除以零或 log(0)")),
    "logits.nan": entry("NaN", "NaN"),
    "logits.inf": entry("infinite values", "无穷大"),
    "logits.nan_inf": entry("NaN and infinite values", "NaN 和无穷大"),
    # --- why the sandbox ended a run ------------------------------------------------------------
    "sandbox.output": entry("output over {size}", "输出超过了 {size}"),
    "sandbox.wall": entry("killed after {seconds} s wall clock", "运行 {seconds} 秒后被强制结束"),
    "sandbox.memory": entry("memory limit of {size} exceeded", "超出了 {size} 的内存上限"),
    "sandbox.cpu": entry("CPU time limit of {seconds} s exceeded", "超出了 {seconds} 秒的 CPU 时间上限"),
    "sandbox.file_size": entry("file size limit of {size} exceeded", "超出了 {size} 的文件大小上限"),
    "sandbox.signal": entry("killed by signal {signal}", "被信号 {signal} 终止"),
    "sandbox.exit": entry("exited with status {status}", "进程以状态 {status} 退出"),
    "sandbox.exit_said": entry("exited with status {status}: {said}", "进程以状态 {status} 退出：{said}"),
    "run.no_reply": entry("it sent no valid reply ({reason})", "它没有发回有效的回复（{reason}）"),
    "run.child_failed_output": entry(
        "{file}: the grading child process failed: {reason}; last output: {output}",
        "{file}：评分子进程失败：{reason}；最后的输出：{output}",
        ("run your network locally; it must not exit the process or exhaust memory",
         "请在本地运行你的网络；它不能退出进程，也不能耗尽内存")),
    # --- the fence around inspection -----------------------------------------------------------
    "fence.wall": entry("{what} took longer than {seconds} s and was stopped", "{what}用时超过 {seconds} 秒，已被停止",
                        PLAIN_FILES),
    "fence.cpu": entry("{what} took more than {seconds} s of CPU time and was stopped",
                       "{what}占用的 CPU 时间超过 {seconds} 秒，已被停止", PLAIN_FILES),
    "fence.died": entry("{what} failed ({how}) before it could say why", "{what}失败了（{how}），没能说明原因",
                        PLAIN_FILES),
    "fence.killed_by": entry("killed by {signal}", "被信号 {signal} 终止"),  # fence.died's {how}
    "fence.killed": entry("killed", "被终止"),
    "fence.exit_status": entry("exit status {status}", "退出状态为 {status}"),
    "fence.memory": entry("{what} needed more than {size} of memory and was stopped",
                          "{what}需要的内存超过 {size}，已被停止", PLAIN_FILES),
    "fence.nesting": entry("{what} was stopped: something in it nests too deep to read",
                           "{what}被停止：其中有嵌套太深、无法读取的内容",
                           ("hand in plain files: the network, its code and its training log",
                             "请提交普通文件：网络、它的代码和训练日志")),
    "fence.inspecting": entry("inspecting {file}", "检查 {file} "),
    # --- this machine's sandbox ---------------------------------------------------------------------
    "sandbox.no_bwrap": entry(
        "bubblewrap (bwrap) is not on PATH; submissions cannot be sandboxed",
        "找不到 bubblewrap（bwrap）：无法在沙盒中运行提交的内容",
        ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), or pass "
         "--no-sandbox to run untrusted code without it (not advised)",
         "请安装 bubblewrap（Debian/Ubuntu：`apt-get install bubblewrap`；Fedora：`dnf install bubblewrap`），"
         "或加上 `--no-sandbox` 在没有沙盒的情况下运行不可信的代码（不建议）")),
    "sandbox.cannot_create": entry(
        "bubblewrap ({bwrap}) cannot create a sandbox here: {reason}",
        "bubblewrap（{bwrap}）无法在这台机器上创建沙盒：{reason}",
        ("allow unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone; "
         "in Docker, --security-opt seccomp=unconfined), or pass --no-sandbox (not advised)",
         "请允许非特权用户命名空间（sysctl `user.max_user_namespaces`、`kernel.unprivileged_userns_clone`；"
         "在 Docker 中加上 `--security-opt seccomp=unconfined`），或加上 `--no-sandbox`（不建议）")),
}
