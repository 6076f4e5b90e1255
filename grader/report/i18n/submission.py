"""The submission report's layout: the verdict box, a check row's notes, the reliability
diagram, the condensed layer table, the details at the end."""

from __future__ import annotations

SUBMISSION_REPORT_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "hand_in": "Hand-in",
        "todo": "What to fix",
        "todo_check": "{name}: {value}, needs {condition}",
        "check_measured_instead": "no history handed in: measured on training images",
        "check_borderline": "borderline: the threshold lies within the measurement's 95% interval",
        "check_no_history": "no training history: add history = \"history.json\" to submission.toml "
                            "with per-epoch train_loss, train_acc, test_acc",
        "check_not_available": "this submission has no such value",
        "check_missing_because": "no value: {reason}",
        "check_holds": "{value} satisfies {condition}",
        "check_fails": "{value} fails {condition}",
        "check_not_graded": "not graded: {error}",
        "check_note_sep": "; ",
        "ece_sub": "see the reliability diagram",
        "rel_title": "Calibration",
        "rel_confidence": "Confidence",
        "rel_ideal": "perfect calibration",
        "rel_gap": "gap",
        "rel_caption": "Each bar: the accuracy of the test images predicted with that confidence. "
                       "Bars below the diagonal: overconfident.",
        "layers_condensed": "{layers} layers in {rows} rows: repeated blocks and each layer's activation, "
                            "pooling and normalisation share a row; results.json lists every layer.",
        "layers_col": "Layers",
        "details": "Submission details",
        "error_message": "The error",
        "form_pickled-module": "pickled module",
        "form_state-dict": "state dict",
        "form_exported": "torch.export program",
        "form_run-folder": "run folder",
        "colon": ": ",
        "list_sep": ", ",
    },
    "zh": {
        "hand_in": "提交",
        "todo": "需要改进",
        "todo_check": "{name}：当前 {value}，要求 {condition}",
        "check_measured_instead": "未提交训练日志：改用训练图像上的实测值",
        "check_borderline": "临界：阈值落在测量值的 95% 置信区间内",
        "check_no_history": "没有训练日志：在 submission.toml 中加入 history = \"history.json\"，"
                            "逐轮记录 train_loss、train_acc、test_acc",
        "check_not_available": "该提交没有这一数值",
        "check_missing_because": "无数值：{reason}",
        "check_holds": "{value} 满足条件 {condition}",
        "check_fails": "{value} 不满足条件 {condition}",
        "check_not_graded": "未评分：{error}",
        "check_note_sep": "；",
        "ece_sub": "见可靠性图",
        "rel_title": "校准",
        "rel_confidence": "置信度",
        "rel_ideal": "完美校准",
        "rel_gap": "差距",
        "rel_caption": "每根柱：以该置信度预测的测试图像的准确率。柱低于对角线表示过于自信。",
        "layers_condensed": "{layers} 层合并为 {rows} 行：重复的模块，以及各层的激活、池化和归一化并入同一行；"
                            "results.json 列出全部层。",
        "layers_col": "层",
        "details": "提交详情",
        "error_message": "错误信息",
        "form_pickled-module": "序列化的整个模型",
        "form_state-dict": "参数字典",
        "form_exported": "导出的程序",
        "form_run-folder": "训练目录",
        "colon": "：",
        "list_sep": "，",
    },
}
