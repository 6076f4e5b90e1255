"""The integrity box's findings, worded from results.json's numbers (grader.report.findings),
and the reasons integrity gives a check it withheld."""

from __future__ import annotations

INTEGRITY_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "flag_diagnosis-applied": "graded with the diagnosed fix, less the rubric's penalty",
        "full_stop": ". ",
        "integrity_claim_acc": "the history claims a final {name} of {claimed}, but the network scores {measured} on "
                               "{images} (an honest log is at most {allowed})",
        "integrity_claim_loss": "the history claims a final training loss of {claimed}, but the network's loss on "
                                "training images is {measured} (an honest log is at least {allowed})",
        "integrity_train_images": "training images",
        "integrity_test_images": "test images",
        "integrity_fit": "the network scores {test} on the test set but {train} on training images, {gap} more: "
                         "networks trained honestly do at least as well on the images they learned from",
        "integrity_memorisation": "possible memorisation of the test set: accuracy falls from {clean} to {altered} "
                                  "on mirrored copies moved by {pixels} pixels (a network that learned to see loses "
                                  "a few points)",
        "integrity_expects": "the network expects {input}",
        "integrity_scale_1": "pixels 0..1",
        "integrity_scale_255": "pixels 0..255",
        "integrity_norm_none": "no normalisation",
        "integrity_norm_half": "normalised with mean 0.5 and std 0.5 per channel",
        "integrity_norm_cifar10": "normalised with the CIFAR-10 mean and std",
        "integrity_norm_imagenet": "normalised with the ImageNet mean and std",
        "integrity_norm_declared": "normalised as declared",
        "integrity_channels_bgr": "channels in BGR order",
        "integrity_class_order": "the network's outputs are in another class order",
        "integrity_applied": "Graded with this fix, as the rubric allows, less {penalty} of the points; as handed in "
                             "it scored {accuracy}.",
        "integrity_reason_claim": "the claim is not borne out: {finding}",
        "integrity_reason_reported": "this fact was reported by the submission's own code, which could have "
                                     "rewritten it (a TA may accept it: trust_reported = true in the rubric's "
                                     "[submission] table)",
        "integrity_reason_history": "the history handed in was not read: {error}",
    },
    "zh": {
        "flag_diagnosis-applied": "已按诊断出的修正评分，并按评分标准扣分",
        "full_stop": "。",
        "integrity_claim_acc": "训练日志声称最后一轮的{name}为 {claimed}，但网络在{images}上只有 {measured}"
                               "（如实记录的日志至多为 {allowed}）",
        "integrity_claim_loss": "训练日志声称最后一轮的训练损失为 {claimed}，但网络在训练图像上的损失为 {measured}"
                                "（如实记录的日志至少为 {allowed}）",
        "integrity_train_images": "训练图像",
        "integrity_test_images": "测试图像",
        "integrity_fit": "网络在测试集上的准确率为 {test}，在训练图像上却只有 {train}，高出 {gap}："
                         "如实训练的网络在学过的图像上至少表现得同样好",
        "integrity_memorisation": "可能记忆了测试集：在左右镜像并平移 {pixels} 个像素的副本上，准确率从 {clean} "
                                  "降到 {altered}（真正学会识别图像的网络只会下降几个百分点）",
        "integrity_expects": "网络需要的输入是：{input}",
        "integrity_scale_1": "像素值缩放到 0..1",
        "integrity_scale_255": "像素值保持 0..255",
        "integrity_norm_none": "不做归一化",
        "integrity_norm_half": "每个通道减去均值 0.5 再除以标准差 0.5",
        "integrity_norm_cifar10": "用 CIFAR-10 的均值和标准差归一化",
        "integrity_norm_imagenet": "用 ImageNet 的均值和标准差归一化",
        "integrity_norm_declared": "按声明的方式归一化",
        "integrity_channels_bgr": "通道顺序为 BGR",
        "integrity_class_order": "网络输出的类别顺序与数据集不同",
        "integrity_applied": "评分标准允许按此修正评分：本次成绩按修正后的结果评定，并扣除 {penalty} 的分数；"
                             "按原样提交时准确率为 {accuracy}。",
        "integrity_reason_claim": "该声明与实测不符：{finding}",
        "integrity_reason_reported": "该数值由提交者自己的代码报告，可能已被改写（助教可以接受它：在评分标准的 "
                                     "[submission] 表中设置 trust_reported = true）",
        "integrity_reason_history": "未能读取提交的训练日志：{error}",
    },
}
