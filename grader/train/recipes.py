"""Training recipes: every hyperparameter of a recipe, with its unit, in one frozen dataclass.

    RECIPES["homework"]  the course's reference training, reproduced exactly
    RECIPES["fast"]      the best test accuracy per CPU-second found on a 2-core AVX-512 CPU
    RECIPES["fast-long"] fast-gpu for 7 epochs: about 90% within 20 minutes on that CPU
    RECIPES["fast-gpu"]  airbench's 94% network trained with Muon, for a CUDA GPU: time to 94%

A recipe is data, not code: the one training loop (``grader.train.loop``) reads these fields.
Neutral values (0, False, 1.0) switch a technique off, so the homework recipe is the loop with
everything off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

from grader.errors import GraderError


@dataclass(frozen=True)
class Recipe:
    """The fields every recipe has; subclasses set their values.

    Attributes:
        name: the recipe's name, as ``grader train --recipe`` takes it.
        arch: an architecture registered in ``grader.models``.
        arch_args: keyword arguments for that architecture (JSON-able).
        epochs: passes over the training set.
        batch_size: images per optimizer step.
        optimizer: "sgd", or "muon": Muon (orthogonalised updates, ``grader.train.muon``) for the
            convolution filters and SGD for biases, BatchNorm shifts and the head.
        lr: peak SGD step size (per step; of the loss averaged over the batch, or summed with
            ``loss_sum``). With "muon": the lr of the biases and BatchNorm shifts.
        head_lr: with "muon": peak SGD lr of the linear head (0 = ``lr``).
        muon_lr: with "muon": peak Muon step (the filters' norm is fixed, so it is relative).
        muon_momentum: with "muon": Muon's momentum (Nesterov when ``nesterov``).
        momentum: SGD momentum (0 = plain SGD).
        nesterov: Nesterov momentum.
        weight_decay: with "sgd", the L2 coefficient added to the gradient of conv/linear weights.
            With "muon", decoupled from each group's peak lr: torch's coefficient is weight_decay /
            group lr, so the decay term added to every SGD-trained parameter's step is
            weight_decay * p at peak lr (then scaled by the schedule and carried by the momentum).
        loss_sum: sum the batch's losses instead of averaging them (the lrs scale with it).
        whiten_bias_epochs: with "muon": the whitening layer's bias is trained only this long,
            its lr falling linearly to 0 (0 = trained like the other biases).
        label_smoothing: cross-entropy target smoothing, 0..1.
        warmup_fraction: fraction of all steps over which lr rises linearly from 0 to ``lr``.
        final_lr_fraction: lr at the last step as a fraction of ``lr``; 1.0 keeps lr constant.
        flip: random horizontal flips, alternating each epoch (airbench's "alternating flip").
        translate: pixels; random shifts of up to this much, reflect-padded (0 = none).
        input_scale: pixels / 255 * input_scale, then (x - input_mean) / input_std.
        input_mean: per RGB channel, after scaling.
        input_std: per RGB channel, after scaling.
        whiten_samples: images used to set the whitening layer from the data (0 = no whitening).
        whiten_eps: added to the patch covariance eigenvalues before the inverse square root.
        channels_last: NHWC memory layout (faster oneDNN convolutions on CPU).
        bf16: bfloat16 autocast for the training forward pass where it is faster (CUDA, or a CPU
            with native bf16: ``grader.train.loop.bf16_pays``); elsewhere the loop trains in
            float32. Test accuracy is always measured in float32, as ``grader grade`` measures it.
        compile: ``torch.compile`` the training forward pass (first steps slower; pays on a GPU).
        deterministic: on CUDA, deterministic cuDNN kernels, so a seed repeats its history; False
            lets cuDNN pick the fastest kernels (runs then differ in the last bits).
        eval_batch_size: images per forward pass when measuring test accuracy.
    """

    # Said when the recipe is about to train on a CPU ("" says nothing); not a hyperparameter.
    cpu_note: ClassVar[str] = ""

    name: str = ""
    arch: str = ""
    arch_args: dict = field(default_factory=dict)
    epochs: int = 1
    batch_size: int = 100
    optimizer: str = "sgd"
    lr: float = 0.01
    head_lr: float = 0.0
    muon_lr: float = 0.0
    muon_momentum: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    loss_sum: bool = False
    whiten_bias_epochs: float = 0.0
    label_smoothing: float = 0.0
    warmup_fraction: float = 0.0
    final_lr_fraction: float = 1.0
    flip: bool = False
    translate: int = 0
    input_scale: float = 1.0
    input_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    input_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    whiten_samples: int = 0
    whiten_eps: float = 5e-4
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    deterministic: bool = True
    eval_batch_size: int = 1000

    def to_dict(self) -> dict:
        """Every field as plain JSON-able values (tuples become lists), for the checkpoint."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def input_spec(self) -> dict:
        """The checkpoint's ``input`` entry: how pixels become the network's input."""
        return {"scale": self.input_scale, "mean": list(self.input_mean), "std": list(self.input_std)}


@dataclass(frozen=True)
class HomeworkRecipe(Recipe):
    """The homework's reference solution: 67.94% test accuracy after 20 epochs.

    homework_net (Kaiming-uniform init), cross-entropy, plain SGD at a constant lr 0.03,
    batches of 100, images as ToTensor gives them (0..1), no normalisation, no augmentation.
    """

    name: str = "homework"
    arch: str = "homework_net"
    epochs: int = 20
    batch_size: int = 100
    lr: float = 0.03
    eval_batch_size: int = 500
    channels_last: bool = True  # float32 all the same: only the order of the sums changes


# CIFAR-10 training-set channel statistics of pixels / 255.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class FastRecipe(Recipe):
    """A small airbench-style network trained for accuracy per CPU-second.

    Chosen by measurement on a 2-core AMD EPYC (avx512_bf16, no AMX); see docs/train.md for the
    figures. Frozen whitening layer set from the data, BatchNorm, GELU, label smoothing,
    alternating flip + 2-pixel translation, Nesterov SGD with warmup and linear decay,
    channels_last and bfloat16 autocast.
    """

    name: str = "fast"
    arch: str = "fast_net"
    arch_args: dict = field(default_factory=lambda: {"widths": [32, 64, 128]})
    epochs: int = 4
    batch_size: int = 256
    lr: float = 0.2
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    warmup_fraction: float = 0.2
    final_lr_fraction: float = 0.0
    flip: bool = True
    translate: int = 2
    input_mean: tuple[float, float, float] = CIFAR10_MEAN
    input_std: tuple[float, float, float] = CIFAR10_STD
    whiten_samples: int = 5000
    channels_last: bool = True
    bf16: bool = True


@dataclass(frozen=True)
class FastGpuRecipe(FastRecipe):
    """airbench's 94% network trained with Muon, for the time to 94% on a CUDA GPU.

    After airbench94_muon (Keller Jordan): widths 64/256/256, BatchNorm without a learned scale,
    logits = head / 256 with a unit-variance head, batches of 2,000 with summed losses, 8 epochs
    with the lr falling linearly to 0, Muon (lr 0.24, momentum 0.6) for the filters, Nesterov SGD
    (momentum 0.85) for the rest, the whitening bias trained for 3 epochs. On the 2-core
    AVX512-BF16 CPU an epoch takes about 140 s (see fast-long, its 7-epoch CPU version).
    """

    cpu_note: ClassVar[str] = ("fast-gpu is sized for a GPU; on a CPU an epoch takes minutes "
                               "(fast-long is the same recipe for 7 epochs, about 20 minutes on 2 cores)")

    name: str = "fast-gpu"
    arch_args: dict = field(default_factory=lambda: {
        "widths": [64, 256, 256], "bn_eps": 1e-12, "bn_scale": False, "logit_scale": 1 / 256, "head_std": 1.0})
    epochs: int = 8
    batch_size: int = 2000
    optimizer: str = "muon"
    lr: float = 0.053
    head_lr: float = 0.67
    muon_lr: float = 0.24
    muon_momentum: float = 0.6
    momentum: float = 0.85
    nesterov: bool = True
    weight_decay: float = 0.004  # per step at peak lr (airbench: 2e-6 per summed example)
    loss_sum: bool = True
    whiten_bias_epochs: float = 3.0
    warmup_fraction: float = 0.0
    final_lr_fraction: float = 0.0
    deterministic: bool = False
    eval_batch_size: int = 2000


@dataclass(frozen=True)
class FastLongRecipe(FastGpuRecipe):
    """fast-gpu for 7 epochs on the CPU, aimed at 90% within 20 minutes on the 2-core AVX512-BF16 CPU
    (its network alone graded 89.91% there; figures in docs/benchmarks.md).

    Muon gets there in fewer epochs of a wider network than the fast recipe scaled up with SGD
    (which needed about 1,230 s of training for 90%); figures in docs/benchmarks.md.
    """

    cpu_note: ClassVar[str] = ""

    name: str = "fast-long"
    epochs: int = 7
    deterministic: bool = True  # matters on CUDA only: the same seed repeats its history
    eval_batch_size: int = 500  # on this CPU 0.74-0.89 ms per image against 0.94-0.99 at 2,000


# Fields older checkpoints hold that recipes no longer have. tta_flip, tta_translate: the log's test
# accuracy averaged flipped and shifted views, which the graded network does not (docs/train.md).
RETIRED_FIELDS = frozenset({"tta_flip", "tta_translate"})

RECIPES: dict[str, type[Recipe]] = {"homework": HomeworkRecipe, "fast": FastRecipe,
                                    "fast-long": FastLongRecipe, "fast-gpu": FastGpuRecipe}


def get_recipe(name: str, **overrides) -> Recipe:
    """The recipe called ``name`` with some fields replaced.

    Raises:
        GraderError: for an unknown recipe name or field.
    """
    if name not in RECIPES:
        raise GraderError(f"unknown recipe {name!r}", f"choose one of: {', '.join(RECIPES)}")
    cls = RECIPES[name]
    return replace(cls(), **_typed(cls, overrides, "the fields are listed in grader/train/recipes.py"))


def recipe_from_dict(values: dict) -> Recipe:
    """Rebuild a recipe from ``Recipe.to_dict()`` output (a checkpoint's ``recipe`` entry).

    A field the checkpoint lacks was added after it was written, so its run never used it: it
    takes its neutral value (technique off, as in ``Recipe()``), not today's default of the
    recipe, which may have moved on (fast-long once trained with SGD, now with Muon). A field in
    ``RETIRED_FIELDS`` is dropped: it changed nothing the run trained.

    Raises:
        GraderError: when the name or a field is unknown.
    """
    cls = RECIPES.get(values.get("name", ""))
    if cls is None:
        raise GraderError(f"unknown recipe {values.get('name')!r} in the checkpoint",
                          f"known recipes: {', '.join(RECIPES)}")
    values = {k: v for k, v in values.items() if k not in RETIRED_FIELDS}
    typed = _typed(cls, values, "the checkpoint was written by another grader version")
    neutral = {f.name: getattr(Recipe(), f.name) for f in fields(Recipe) if f.name not in typed}
    return replace(cls(), **neutral, **typed)


def _typed(cls: type[Recipe], values: dict, hint: str) -> dict:
    """``values`` with lists made tuples where the field is a tuple; refuses unknown fields."""
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise GraderError(f"unknown recipe field(s) {', '.join(unknown)} for recipe {cls.name!r}", hint)
    return {k: tuple(v) if isinstance(getattr(cls(), k), tuple) else v for k, v in values.items()}
