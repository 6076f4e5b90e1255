"""The class report's "Similar pairs" section and similarity.csv's evidence
(grader.similarity.words)."""

from __future__ import annotations

SIMILARITY_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "sim_title": "Similar pairs",
        "sim_intro": "Pairs whose weights or behaviour say that one network is the other's, or was made from "
                     "it. This is evidence for a conversation, never a penalty by itself.",
        "sim_summary": "{flagged} of {pairs} pairs flagged among {students} students. Kappa on errors across "
                       "the class: median {median}, robust spread {spread}.",
        "sim_none": "No pair stands out.",
        "sim_innocent": "Innocent causes: the same recipe run with the same seed gives identical weights, so the "
                        "reference solution handed in twice is a pair; students who started from the same "
                        "published checkpoint share weights; a tiny class makes \"unusual\" less certain.",
        "sim_action": "What to do: open both hand-ins, compare their code, histories and hand-in times, and ask "
                      "each student how the network was trained before deciding anything.",
        "sim_col_a": "Student A",
        "sim_col_b": "Student B",
        "sim_col_kind": "Kind",
        "sim_col_score": "Score",
        "sim_col_unusual": "How unusual",
        "sim_col_evidence": "Evidence",
        "sim_kind_exact copy": "exact copy",
        "sim_kind_reordered copy": "reordered copy",
        "sim_kind_derived (weights)": "derived (weights)",
        "sim_kind_derived (behaviour)": "derived (behaviour)",
        "sim_compared": "compared: {origin}",
        "sim_ev_exact": "{share} of the weights identical, whatever the file format, key names or tensor order",
        "sim_ev_reordered": "the same weights with the hidden units in another order ({share} of them)",
        "sim_ev_aligned": "weights {aligned} alike (cosine) after matching hidden units, {saved} as saved",
        "sim_ev_behaviour": "same prediction on {agreement} of test images; kappa on errors {kappa}{interval}",
        "sim_ev_interval": " (95% interval {lo} to {hi})",
        "sim_ev_unusual": ", {z} robust SDs above the class median of {median}",
        "sim_ev_same_wrong": "{same} of the {both} images both get wrong have the same wrong label",
        "sim_ev_no_weights": "weights not compared: {note}",
        "sim_sd": "{z} SD",
    },
    "zh": {
        "sim_title": "相似的作业对",
        "sim_intro": "以下每一对的权重或行为表明：一个网络就是另一个，或由另一个改造而来。这只是与学生谈话的依据，"
                     "不能单凭它扣分。",
        "sim_summary": "{students} 名学生的 {pairs} 对中标记了 {flagged} 对。全班错误一致性 kappa：中位数 {median}，"
                       "稳健离散度 {spread}。",
        "sim_none": "没有明显相似的作业对。",
        "sim_innocent": "无辜的原因：同一方案、同一随机种子训练出的权重完全相同，因此参考答案被交了两次也会成对；"
                        "从同一公开检查点出发的学生会共享权重；班级很小时“异常程度”不太确定。",
        "sim_action": "建议：打开两份作业，比较代码、训练记录和提交时间，并在做出任何决定前询问每位学生如何训练网络。",
        "sim_col_a": "学生 A",
        "sim_col_b": "学生 B",
        "sim_col_kind": "类型",
        "sim_col_score": "分值",
        "sim_col_unusual": "异常程度",
        "sim_col_evidence": "证据",
        "sim_kind_exact copy": "完全相同的副本",
        "sim_kind_reordered copy": "重排后的副本",
        "sim_kind_derived (weights)": "派生（权重）",
        "sim_kind_derived (behaviour)": "派生（行为）",
        "sim_compared": "对照：{origin}",
        "sim_ev_exact": "{share} 的权重完全相同（与文件格式、键名和张量顺序无关）",
        "sim_ev_reordered": "权重相同，只是隐藏单元的顺序不同（{share}）",
        "sim_ev_aligned": "匹配隐藏单元后权重相似度（余弦）为 {aligned}，原顺序下为 {saved}",
        "sim_ev_behaviour": "{agreement} 的测试图像预测相同；错误一致性 kappa {kappa}{interval}",
        "sim_ev_interval": "（95% 区间 {lo} 至 {hi}）",
        "sim_ev_unusual": "，比全班中位数 {median} 高 {z} 个稳健标准差",
        "sim_ev_same_wrong": "两者都错的 {both} 张图像中有 {same} 给出相同的错误标签",
        "sim_ev_no_weights": "未比较权重：{note}",
        "sim_sd": "{z} 个标准差",
    },
}
