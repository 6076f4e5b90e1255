"""Training recipes: every hyperparameter of a recipe, with its unit, in one frozen dataclass.

    RECIPES["homework"]  the course's reference training, reproduced exactly
    RECIPES["fast"]      the best test accuracy per CPU-second found on a 2-core AVX-512 CPU
    RECIPES["fast-long"] the same, wider and longer: about 90% in 20 minutes there

A recipe is data, not code: the one training loop (``grader.train.loop``) reads these fields.
Neutral values (0, False, 1.0) switch a technique off, so the homework recipe is the loop with
everything off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

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
        lr: peak SGD step size (per step, loss averaged over the batch).
        momentum: SGD momentum (0 = plain SGD).
        nesterov: Nesterov momentum.
        weight_decay: L2 coefficient added to the gradient of conv/linear weights (per step).
        label_smoothing: cross-entropy target smoothing, 0..1.
        warmup_fraction: fraction of all steps over which lr rises linearly from 0 to ``lr``.
        final_lr_fraction: lr at the last step as a fraction of ``lr``; 1.0 keeps lr constant.
        flip: random horizontal flips, alternating each epoch (airbench's "alternating flip").
        translate: pixels; random shifts of up to this much, reflect-padded (0 = none).
        tta_flip: evaluate as the mean of the logits of each image and its mirror image.
        input_scale: pixels / 255 * input_scale, then (x - input_mean) / input_std.
        input_mean: per RGB channel, after scaling.
        input_std: per RGB channel, after scaling.
        whiten_samples: images used to set the whitening layer from the data (0 = no whitening).
        whiten_eps: added to the patch covariance eigenvalues before the inverse square root.
        channels_last: NHWC memory layout (faster oneDNN convolutions on CPU).
        bf16: bfloat16 autocast for the forward pass (CPU with avx512_bf16, or CUDA).
        eval_batch_size: images per forward pass when measuring test accuracy.
    """

    name: str = ""
    arch: str = ""
    arch_args: dict = field(default_factory=dict)
    epochs: int = 1
    batch_size: int = 100
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    warmup_fraction: float = 0.0
    final_lr_fraction: float = 1.0
    flip: bool = False
    translate: int = 0
    tta_flip: bool = False
    input_scale: float = 1.0
    input_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    input_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    whiten_samples: int = 0
    whiten_eps: float = 5e-4
    channels_last: bool = False
    bf16: bool = False
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
    flip test-time augmentation, channels_last and bfloat16 autocast.
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
    tta_flip: bool = True
    input_mean: tuple[float, float, float] = CIFAR10_MEAN
    input_std: tuple[float, float, float] = CIFAR10_STD
    whiten_samples: int = 5000
    channels_last: bool = True
    bf16: bool = True


@dataclass(frozen=True)
class FastLongRecipe(FastRecipe):
    """The fast recipe, wider and longer, for about 90% in 20 minutes on the same 2-core CPU.

    Measured on the shared JPEG copy (quiet machine): 88.4% after epoch 12 (917 s), 90.03% after
    epoch 16 (1,213 s, including a flip-TTA test evaluation after every epoch).
    """

    name: str = "fast-long"
    arch_args: dict = field(default_factory=lambda: {"widths": [64, 128, 256]})
    epochs: int = 16


RECIPES: dict[str, type[Recipe]] = {"homework": HomeworkRecipe, "fast": FastRecipe,
                                    "fast-long": FastLongRecipe}


def get_recipe(name: str, **overrides) -> Recipe:
    """The recipe called ``name`` with some fields replaced.

    Raises:
        GraderError: for an unknown recipe name or field.
    """
    if name not in RECIPES:
        raise GraderError(f"unknown recipe {name!r}", f"choose one of: {', '.join(RECIPES)}")
    return recipe_from_dict({"name": name, **overrides})


def recipe_from_dict(values: dict) -> Recipe:
    """Rebuild a recipe from ``Recipe.to_dict()`` output (a checkpoint's ``recipe`` entry).

    Raises:
        GraderError: when the name or a field is unknown.
    """
    cls = RECIPES.get(values.get("name", ""))
    if cls is None:
        raise GraderError(f"unknown recipe {values.get('name')!r} in the checkpoint",
                          f"known recipes: {', '.join(RECIPES)}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise GraderError(f"unknown recipe field(s) {', '.join(unknown)} for recipe {cls.name!r}",
                          "the checkpoint was written by another grader version")
    typed = {k: tuple(v) if isinstance(getattr(cls(), k), tuple) else v for k, v in values.items()}
    return replace(cls(), **typed)
