"""The "Robustness" section of both reports (grader.report.robustness_figures): corruption
names are CIFAR-10-C's file names."""

from __future__ import annotations

ROBUSTNESS_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "rob_title": "Robustness to common corruptions",
        "rob_summary": "Mean accuracy over {count} corruptions at 5 severities: {mean} (95% interval {lo} to {hi}), "
                       "against {clean} on the clean test set; {n} test images per corruption and severity.",
        "rob_regenerated": "Regenerated, not bit-identical to the published CIFAR-10-C: its corruptions and "
                           "parameters, recomputed here with other random draws. Compare only with figures this "
                           "grader measured.",
        "rob_left_out": "Left out: {names}.",
        "rob_why_frost": "frost (it overlays photographs of frost that are not available here)",
        "rob_reference": "For scale: RobustBench's standard WRN-28-10 scores 94.8% clean and 73.5% over the 15 "
                         "published corruptions.",
        "rob_caption": "Accuracy per corruption (rows) and severity (columns, 1 mild to 5 harsh); * marks the "
                       "extra corruptions, left out of the mean.",
        "rob_severity": "severity",
        "rob_examples": "One test image under each corruption at severity {severity}, with what the network "
                        "predicted.",
        "rob_clean": "clean",
        "rob_class_summary": "{count} of {graded} graded submissions measured: median mean corruption accuracy "
                             "{median}, against a median clean accuracy of {clean}.",
        "rob_class_caption": "Each point is a student: clean test accuracy against mean corruption accuracy; on "
                             "the line a network would lose nothing.",
        "rob_clean_axis": "clean test accuracy",
        "rob_corrupt_axis": "mean corruption accuracy",
        "rob_c_gaussian_noise": "Gaussian noise", "rob_c_shot_noise": "shot noise",
        "rob_c_impulse_noise": "impulse noise", "rob_c_defocus_blur": "defocus blur",
        "rob_c_glass_blur": "glass blur", "rob_c_motion_blur": "motion blur", "rob_c_zoom_blur": "zoom blur",
        "rob_c_snow": "snow", "rob_c_frost": "frost", "rob_c_fog": "fog", "rob_c_brightness": "brightness",
        "rob_c_contrast": "contrast", "rob_c_elastic_transform": "elastic", "rob_c_pixelate": "pixelate",
        "rob_c_jpeg_compression": "JPEG", "rob_c_speckle_noise": "speckle noise",
        "rob_c_gaussian_blur": "Gaussian blur", "rob_c_spatter": "spatter", "rob_c_saturate": "saturate",
    },
    "zh": {
        "rob_title": "常见图像损坏下的鲁棒性",
        "rob_summary": "{count} 种损坏、5 个强度下的平均准确率：{mean}（95% 区间 {lo} 至 {hi}），干净测试集上为 {clean}；"
                       "每种损坏、每个强度各用 {n} 张测试图像。",
        "rob_regenerated": "本地重新生成，与公开发布的 CIFAR-10-C 并非逐位相同：损坏方式与参数相同，但随机抽样不同。"
                           "只应与本工具测得的数值比较。",
        "rob_left_out": "未包含：{names}。",
        "rob_why_frost": "霜冻（需要叠加霜冻照片，此处没有这些照片）",
        "rob_reference": "作为参照：RobustBench 的标准 WRN-28-10 在干净测试集上为 94.8%，在公开的 15 种损坏上平均为 73.5%。",
        "rob_caption": "每种损坏（行）和强度（列，1 最轻、5 最重）下的准确率；* 表示额外的损坏，不计入平均值。",
        "rob_severity": "强度",
        "rob_examples": "同一张测试图像在每种损坏（强度 {severity}）下的样子，以及网络的预测。",
        "rob_clean": "干净",
        "rob_class_summary": "已评分的 {graded} 份作业中测量了 {count} 份：损坏下平均准确率的中位数为 {median}，"
                             "干净准确率的中位数为 {clean}。",
        "rob_class_caption": "每个点是一名学生：干净测试准确率与损坏下平均准确率；落在直线上表示没有损失。",
        "rob_clean_axis": "干净测试准确率",
        "rob_corrupt_axis": "损坏下平均准确率",
        "rob_c_gaussian_noise": "高斯噪声", "rob_c_shot_noise": "散粒噪声", "rob_c_impulse_noise": "脉冲噪声",
        "rob_c_defocus_blur": "散焦模糊", "rob_c_glass_blur": "玻璃模糊", "rob_c_motion_blur": "运动模糊",
        "rob_c_zoom_blur": "缩放模糊", "rob_c_snow": "雪", "rob_c_frost": "霜冻", "rob_c_fog": "雾",
        "rob_c_brightness": "亮度", "rob_c_contrast": "对比度", "rob_c_elastic_transform": "弹性形变",
        "rob_c_pixelate": "像素化", "rob_c_jpeg_compression": "JPEG 压缩", "rob_c_speckle_noise": "斑点噪声",
        "rob_c_gaussian_blur": "高斯模糊", "rob_c_spatter": "飞溅", "rob_c_saturate": "饱和度",
    },
}
