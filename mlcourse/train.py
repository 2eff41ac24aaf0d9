"""One training loop for every method of the course.

Every model in the course learns the same way: draw a batch of clips, embed them, compute a
loss that compares the embeddings, take a gradient step. What changes from method to method
is the loss (contrastive, triplet, proxies, ...) and how batches are drawn (the samplers in
:mod:`mlcourse.data.samplers`), so :func:`train` takes both as arguments and does the rest:

- picks the device (a CUDA GPU, else Apple's MPS, else the CPU) unless told;
- moves the features and labels to that device **once**, so each step only indexes them;
- on CUDA, runs the network in bfloat16 autocast (the loss stays in float32);
- optimises the network's parameters and the loss's own, if it has any (proxies, class
  weights);
- seeds everything, shows a tqdm progress bar, and keeps the loss of every step and the wall
  time of every epoch (later notebooks compare training times), split into the time spent
  waiting for batches and the time the device spent computing the steps (on CUDA measured on
  the GPU itself, with CUDA events), so a slow input pipeline shows;
- writes a checkpoint after every epoch, atomically, and can resume from it;
- under ``torchrun --nproc_per_node=N``, trains in N processes (one per GPU) on the same
  global batches as one process would, each embedding its share of every batch
  (see :mod:`mlcourse.distributed`).

Taught in notebooks/03_siamese_contrastive.ipynb
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed
from .checks import choose_device, require_positive_int
from .data.samplers import pair_halves, triplet_thirds
from .files import atomic_file
from .metrics import recall_at_k


@dataclass
class TrainingHistory:
    """What happened during training, epoch by epoch.

    Attributes:
        step_losses: The loss of every optimisation step.
        epoch_losses: The mean step loss of each epoch.
        epoch_seconds: Wall time of each epoch (evaluation by ``on_epoch_end`` excluded).
        clips_per_second: Training throughput of each epoch.
        epoch_input_seconds: Of each epoch's wall time, the time spent drawing the batches
            from the sampler and handing their indices to the device.
        epoch_compute_seconds: Of each epoch's wall time, the time the device spent on the
            steps (forward, loss, backward, optimiser): on CUDA, summed over the steps, the GPU
            time from the moment the GPU starts a step to the moment it finishes it, read from
            CUDA events; on the CPU the steps' wall time. NaN on other devices (MPS), where it
            is not measured.
        evaluations: What ``on_epoch_end`` returned after each epoch (empty dicts if nothing).
        step_stats: The loss's ``last_stats`` after every step, for losses that keep them
            (e.g. the share of active triplets of :class:`mlcourse.losses.TripletMarginLoss`);
            empty otherwise.
        device: The device trained on, e.g. ``"cpu"`` or ``"cuda:0"``.
    """

    step_losses: list = field(default_factory=list)
    epoch_losses: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    clips_per_second: list = field(default_factory=list)
    epoch_input_seconds: list = field(default_factory=list)
    epoch_compute_seconds: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    step_stats: list = field(default_factory=list)
    device: str = ""

    @property
    def total_seconds(self):
        """Training time summed over epochs."""
        return float(sum(self.epoch_seconds))

    @property
    def input_fraction(self):
        """The share of the training time spent waiting for batches."""
        return float(sum(self.epoch_input_seconds) / self.total_seconds)

    @property
    def compute_fraction(self):
        """The share of the training time the device spent on the steps (its busy time).

        Close to 1: the device is the bottleneck, as it should be. Well below 1: between
        steps it waits, for batches (see :attr:`input_fraction`) or for the rest of the loop.
        """
        return float(sum(self.epoch_compute_seconds) / self.total_seconds)

    @property
    def compute_seconds_per_step(self):
        """The device's busy time per training step, averaged over all steps."""
        return float(sum(self.epoch_compute_seconds) / len(self.step_losses))


def seed_everything(seed):
    """Seed Python's, numpy's and torch's generators (on every device).

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_device(array, device):
    """An array or tensor as a tensor on ``device``; arrays are copied (memory maps are read)."""
    if isinstance(array, torch.Tensor):
        return array.to(device)
    return torch.tensor(np.asarray(array), device=device)


def default_step(model, loss_fn, features, labels, batch):
    """Embed the batch's clips and compare them: ``loss_fn(model(features[batch]), labels[batch])``.

    The network may run in reduced precision (autocast); the loss gets float32 embeddings.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    embeddings = model(features[batch])
    with torch.autocast(features.device.type, enabled=False):
        return loss_fn(embeddings.float(), labels[batch])


def sampled_triplets_step(model, loss_fn, features, labels, batch):
    """Embed a batch of sampled triplets ``[anchors, positives, negatives]`` and compare them.

    For samplers that draw the triplets themselves (e.g.
    :class:`mlcourse.data.samplers.TripletBatches`): the thirds of the batch are the anchors,
    positives and negatives, and ``loss_fn(embeddings, None, triplets=...)`` (a
    :class:`mlcourse.losses.TripletMarginLoss`) scores exactly those triplets, mining none.

    Taught in notebooks/04_triplet_mining.ipynb
    """
    embeddings = model(features[batch])
    rows = torch.arange(len(batch), device=embeddings.device)
    with torch.autocast(features.device.type, enabled=False):
        return loss_fn(embeddings.float(), None, triplets=triplet_thirds(rows))


def pair_step(model, loss_fn, features, labels, batch):
    """Embed a batch of pairs ``[firsts, seconds]`` and compare each first clip with its second.

    For :class:`mlcourse.data.samplers.PairBatches`: the first half of the batch holds the
    first clip of every pair, the second half its partner. A pair is positive when both clips
    have the same label, negative otherwise, and ``loss_fn(embeddings, None, pairs=...)`` (e.g.
    :func:`mlcourse.losses.contrastive_loss`) gets exactly those pairs, as row indices into the
    batch: ``(positive firsts, positive seconds, negative firsts, negative seconds)``.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    embeddings = model(features[batch])
    first, second = pair_halves(torch.arange(len(batch), device=embeddings.device))
    similar = labels[batch][first] == labels[batch][second]
    with torch.autocast(features.device.type, enabled=False):
        return loss_fn(
            embeddings.float(), None, pairs=(first[similar], second[similar], first[~similar], second[~similar])
        )


def recall_on_epoch_end(features, labels, groups=None, ks=(1,)):
    """An ``on_epoch_end`` for :func:`train` that measures recall at k on held-out clips.

    After every epoch, the clips are embedded with the model being trained (:func:`embed`) and
    scored with :func:`mlcourse.metrics.recall_at_k`; the history keeps the result.

    Args:
        features: (N, ...) array or tensor of the held-out inputs, e.g. the validation log-mels.
        labels: (N,) labels of those clips.
        groups: Optional (N,) group of each clip (e.g. its piece): a clip's own group is left
            out of its neighbours, as in :func:`mlcourse.metrics.recall_at_k`.
        ks: The values of k.

    Returns:
        ``on_epoch_end(epoch, model) -> {"valid R@k": recall, ...}``, one entry for each k.

    Example:
        >>> history = train(model, loss_fn, train_features, train_labels, sampler,
        ...                 on_epoch_end=recall_on_epoch_end(valid_features, valid_labels))  # doctest: +SKIP
        >>> [evaluation["valid R@1"] for evaluation in history.evaluations]  # doctest: +SKIP

    Taught in notebooks/03_siamese_contrastive.ipynb
    """

    def on_epoch_end(epoch, model):
        recalls = recall_at_k(embed(model, features), labels, ks=ks, groups=groups)
        return {f"valid R@{k}": recall for k, recall in recalls.items()}

    return on_epoch_end


def train(
    model,
    loss_fn,
    features,
    labels,
    sampler,
    *,
    epochs=10,
    lr=1e-3,
    weight_decay=0.0,
    device=None,
    seed=0,
    step=default_step,
    amp=True,
    checkpoint=None,
    resume=False,
    on_epoch_end=None,
    progress=True,
):
    """Train ``model`` (and the parameters of ``loss_fn``, if any) with Adam.

    Args:
        model: ``torch.nn.Module`` mapping a batch of features to (B, D) embeddings.
        loss_fn: Callable ``loss_fn(embeddings, labels) -> scalar tensor``; when it is an
            ``nn.Module`` with parameters, they are trained too.
        features: (N, ...) array or tensor of all training inputs, e.g. (N, 128, 130) log-mels.
        labels: (N,) integer array or tensor of class codes (or None if ``step`` needs none).
        sampler: Iterable of index arrays, one per batch, with ``set_epoch(epoch)`` and ``len``
            (see :mod:`mlcourse.data.samplers`).
        epochs: Number of passes over the sampler.
        lr, weight_decay: Adam's learning rate and weight decay.
        device: See :func:`choose_device`. Under torchrun, None or ``"cuda"`` gives each
            process its own GPU (``cuda:LOCAL_RANK``); without CUDA, the CPU.
        seed: Seeds the network's initialisation noise, dropout and the samplers' epochs.
        step: ``step(model, loss_fn, features, labels, batch) -> loss`` for one batch; the
            default embeds and calls ``loss_fn``. Methods with other inputs (pairs of
            modalities, augmentations) pass their own. Under torchrun the step gets the global
            batch and a ``model`` that embeds it across the processes
            (:class:`mlcourse.distributed.GlobalBatchModel`): a step works unchanged if it calls
            ``model(...)`` with inputs of the batch's rows and draws its random numbers the
            same way in every process.
        amp: Use bfloat16 autocast on CUDA (ignored elsewhere).
        checkpoint: Path of a checkpoint file written after every epoch, or None.
        resume: Start from ``checkpoint`` if it exists (model, loss, optimiser, history), and
            only if the same data, model, starting weights, loss, batches, step and settings
            made it (:func:`fingerprint`); otherwise train afresh and say why in one line.
        on_epoch_end: Optional ``on_epoch_end(epoch, model) -> dict`` (e.g. validation
            recall), called in eval mode after each epoch; results go to the history.
        progress: Show a tqdm progress bar (under torchrun, in process 0 only).

    Returns:
        A :class:`TrainingHistory`. The model is left on the device, in eval mode. Under
        torchrun every process returns the same history and model; only process 0 writes the
        checkpoint.

    Raises:
        ValueError: If features and labels differ in length, ``epochs`` < 1, or the device is
            not available.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    _check_training_inputs(features, labels, epochs)
    several_processes = distributed.setup()
    device = distributed.local_device(device) if several_processes else choose_device(device)
    seed_everything(seed)
    model.to(device)
    loss_fn = loss_fn.to(device) if isinstance(loss_fn, torch.nn.Module) else loss_fn
    features = to_device(features, device)
    labels = None if labels is None else to_device(labels, device)
    optimizer = torch.optim.Adam(_trainable_parameters(model, loss_fn), lr=lr, weight_decay=weight_decay)
    history, first_epoch = TrainingHistory(device=str(device)), 0
    shaped_by = None
    if checkpoint is not None:  # what shapes this run: a checkpoint of another run is not resumed
        settings = {"lr": lr, "weight_decay": weight_decay, "seed": seed, "amp": amp}
        shaped_by = fingerprint(model, loss_fn, features, labels, sampler, step, settings)
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = _read_checkpoint(checkpoint)  # read and checked once, for both uses below
        changed = checkpoint_changes(state, shaped_by, epochs)
        if changed:
            if distributed.is_main():
                print(f"the checkpoint {checkpoint} {changed}: training afresh")
        else:
            history, first_epoch = _restore(checkpoint, state, model, loss_fn, optimizer)
    use_amp = amp and device.type == "cuda"
    # Several processes: the step calls a model that shares each global batch among them.
    network = distributed.GlobalBatchModel(model, device) if several_processes else model
    bar = tqdm(
        total=(epochs - first_epoch) * len(sampler),
        desc="training",
        unit="batch",
        disable=not (progress and distributed.is_main()),
    )
    for epoch in range(first_epoch, epochs):
        _train_one_epoch(network, loss_fn, features, labels, sampler, optimizer, step, epoch, use_amp, history, bar)
        distributed.broadcast_buffers(model)  # batch norm statistics of process 0 everywhere
        history.evaluations.append(_evaluate(model, on_epoch_end, epoch))
        if checkpoint is not None and distributed.is_main():
            save_checkpoint(checkpoint, model, loss_fn, optimizer, history, epoch + 1, shaped_by)
        distributed.barrier()  # no process runs ahead of the checkpoint
    bar.close()
    model.eval()
    return history


def train_copy(start, loss_fn, features, labels, sampler, **options):
    """Train a copy of ``start`` and leave ``start`` as it is.

    A comparison of methods trains every model from the same initial weights: each method
    gets its own copy of one untrained network.

    Args:
        start: The ``torch.nn.Module`` every copy starts from (its weights and buffers).
        loss_fn, features, labels, sampler: As in :func:`train`.
        **options: Keyword arguments of :func:`train` (``epochs``, ``seed``, ``device``, ...).

    Returns:
        ``(model, history)``: the trained copy and its :class:`TrainingHistory`.

    Taught in notebooks/04_triplet_mining.ipynb
    """
    model = copy.deepcopy(start)
    return model, train(model, loss_fn, features, labels, sampler, **options)


def _train_one_epoch(model, loss_fn, features, labels, sampler, optimizer, step, epoch, use_amp, history, bar):
    model.train()
    sampler.set_epoch(epoch)
    clock = StepClock(features.device)
    losses, n_clips = [], 0
    clock.start()
    for batch in clock.batches(sampler):
        with clock.step():
            with torch.autocast(features.device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = step(model, loss_fn, features, labels, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        losses.append(loss.detach())
        if getattr(loss_fn, "last_stats", None):
            history.step_stats.append(dict(loss_fn.last_stats))
        n_clips += len(batch)
        bar.update()
    # One transfer per epoch: reading each loss at once would make the GPU wait every step.
    losses = torch.stack(losses).float().cpu().tolist()
    seconds = clock.stop()
    history.step_losses += losses
    history.epoch_losses.append(float(np.mean(losses)))
    history.epoch_seconds.append(seconds)
    history.clips_per_second.append(n_clips / seconds)
    history.epoch_input_seconds.append(clock.input_seconds)
    history.epoch_compute_seconds.append(clock.compute_seconds())
    bar.set_postfix(epoch=epoch + 1, loss=f"{history.epoch_losses[-1]:.4f}")


class StepClock:
    """Where an epoch's time goes: waiting for batches, and the device computing the steps.

    The host's clock times the sampler. The steps are timed where they run: a GPU works
    through its queue of kernels while Python goes on, so the host's clock would only see
    how long the kernels took to *launch*. On CUDA, each step is therefore bracketed by two
    CUDA events, which the GPU stamps when it reaches them; their times are read once, at the
    end of the epoch (reading them earlier would make the host wait for the GPU). On the CPU
    the step's wall time is its compute time.

    Args:
        device: The ``torch.device`` the steps run on.

    Example:
        >>> clock = StepClock(torch.device("cpu"))
        >>> clock.start()
        >>> for batch in clock.batches([[0, 1], [2, 3]]):
        ...     with clock.step():
        ...         pass
        >>> seconds = clock.stop()

    Taught in notebooks/03_siamese_contrastive.ipynb
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.input_seconds = 0.0
        self._host_step_seconds = 0.0
        self._events = []
        self._start = None

    def start(self):
        """Start the epoch's wall clock (after the device has finished earlier work)."""
        self._synchronize()
        self._start = time.perf_counter()

    def stop(self):
        """The epoch's wall time in seconds, once the device has finished every step."""
        self._synchronize()
        return time.perf_counter() - self._start

    def batches(self, sampler):
        """Each batch of ``sampler`` as an index tensor on the device; the waiting is timed."""
        iterator = iter(sampler)
        while True:
            waited = time.perf_counter()
            indices = next(iterator, None)
            if indices is None:
                return
            indices = _indices_on(self.device, indices)
            self.input_seconds += time.perf_counter() - waited
            yield indices

    @contextmanager
    def step(self):
        """A context manager that times one training step on the device."""
        if self.device.type == "cuda":
            stream = torch.cuda.current_stream(self.device)  # the device's, not the current one's
            events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            events[0].record(stream)
        started = time.perf_counter()
        yield
        self._host_step_seconds += time.perf_counter() - started
        if self.device.type == "cuda":
            events[1].record(stream)
            self._events.append(events)

    def compute_seconds(self):
        """The device's time on the steps so far (waits for the GPU on CUDA)."""
        if self.device.type == "cuda":
            self._synchronize()
            return sum(start.elapsed_time(end) for start, end in self._events) / 1000
        if self.device.type == "cpu":
            return self._host_step_seconds
        return float("nan")

    def _synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _indices_on(device, indices):
    """A batch's indices as a tensor on ``device``.

    A plain copy to a GPU waits until the GPU has finished all queued work, every step. From
    pinned (page-locked) memory the copy is queued like a kernel, and the host runs ahead.
    """
    indices = torch.as_tensor(np.asarray(indices))
    if device.type != "cuda":
        return indices.to(device)
    return indices.pin_memory().to(device, non_blocking=True)


def _evaluate(model, on_epoch_end, epoch):
    if on_epoch_end is None:
        return {}
    model.eval()
    with torch.no_grad():
        return dict(on_epoch_end(epoch, model) or {})


def _trainable_parameters(model, loss_fn):
    parameters = list(model.parameters())
    if isinstance(loss_fn, torch.nn.Module):
        parameters += list(loss_fn.parameters())
    return [p for p in parameters if p.requires_grad]


def _check_training_inputs(features, labels, epochs):
    if labels is not None and len(labels) != len(features):
        raise ValueError(
            f"features and labels differ in length ({len(features)} vs {len(labels)}): "
            "give one label per clip, e.g. dataset.labels(concept)[0]"
        )
    require_positive_int(epochs, "epochs")


# Clips per forward pass when embedding. On a CPU a batch whose activations fit in the cache is
# fastest: 720 log-mels through an EmbeddingNet take 0.21 s in batches of 64 and 0.46 s in
# batches of 256 on two cores. The embeddings are the same whatever the size (eval mode).
EMBED_BATCH = 64


@torch.no_grad()
def embed(model, features, batch_size=EMBED_BATCH, device=None):
    """Embeddings of all clips, computed in batches in eval mode.

    Args:
        model: The trained network.
        features: (N, ...) array or tensor of inputs.
        batch_size: Clips per forward pass.
        device: See :func:`choose_device`; None uses the model's own device.

    Returns:
        (N, D) float32 tensor on the CPU.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    device = choose_device(device, like=model)
    model.to(device).eval()
    outputs = []
    for start in range(0, len(features), batch_size):
        batch = to_device(features[start : start + batch_size], device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            outputs.append(model(batch).float().cpu())
    return torch.cat(outputs)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _plain(value, depth=0):
    """``value`` as JSON-able data that says what it is.

    Arrays and tensors by their SHA-256, functions by name, objects by their class and attributes
    (three levels deep).
    """
    if isinstance(value, np.ndarray) and value.dtype == object:
        return _plain(value.tolist(), depth)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = value.detach().cpu().contiguous().reshape(-1) if isinstance(value, torch.Tensor) else value
        raw = array.view(torch.uint8).numpy() if isinstance(array, torch.Tensor) else np.ascontiguousarray(array)
        return [str(value.dtype), list(value.shape), hashlib.sha256(raw.tobytes()).hexdigest()[:16]]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, depth) for k, v in value.items()}
    if isinstance(value, torch.nn.Module):
        return [_module_settings(value, depth), _plain(value.state_dict())]
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    if depth < 3 and hasattr(value, "__dict__"):
        return [type(value).__qualname__, _plain(vars(value), depth + 1)]
    return type(value).__qualname__


def _module_settings(module, depth):
    """A module's layers and settings (its public attributes, e.g. a temperature), its children's too."""
    settings = {key: value for key, value in vars(module).items() if not key.startswith("_") and key != "training"}
    children = {name: _module_settings(child, depth) for name, child in module.named_children()}
    return [repr(module), _plain(settings, depth), children]


def fingerprint(model, loss_fn, features, labels, sampler, step, settings):
    """What shapes a training run, one short hash per part, for :func:`checkpoint_changes`.

    The parts: the training data (features and labels), the model (its layers and starting
    weights), the loss (its settings and parameters), the batches (the sampler's first epoch),
    the step, and ``settings`` (learning rate, weight decay, seed, ...). The number of epochs is
    not a part: a checkpoint of k epochs continues into a longer run of the same settings.
    """
    sampler.set_epoch(0)
    parts = {
        "data": [features, labels],
        "model": model,
        "loss": loss_fn,
        "batches": [np.asarray(batch) for batch in sampler],
        "step": step,
        **settings,
    }
    return {name: hashlib.sha256(json.dumps(_plain(part)).encode()).hexdigest()[:16] for name, part in parts.items()}


def checkpoint_changes(state, shaped_by, epochs):
    """Why a checkpoint (its contents, ``state``) cannot be resumed by a run of ``epochs`` shaped by ``shaped_by``.

    Returns:
        A phrase such as ``"was trained with another lr, seed"``, or ``""`` when it can be resumed.
    """
    saved = state.get("fingerprint")
    if not saved:
        return "was written without the settings that shaped it (by an older version of the course)"
    changed = [name for name in shaped_by if saved.get(name) != shaped_by[name]]
    if changed:
        return f"was trained with another {', '.join(changed)}"
    if int(state["epoch"]) > epochs:
        return f"holds {state['epoch']} epochs, more than the {epochs} asked"
    return ""


def _checksum(state):
    """SHA-256 of every tensor of a checkpoint's model, loss and optimiser states."""
    return hashlib.sha256(json.dumps(_plain([state["model"], state["loss"], state["optimizer"]])).encode()).hexdigest()


def save_checkpoint(path, model, loss_fn=None, optimizer=None, history=None, epoch=0, shaped_by=None):
    """Write model, loss and optimiser state and the history to ``path``, atomically.

    The file is written under a temporary name in the same folder and renamed into place, so an
    interrupted save never leaves a half-written checkpoint behind. It holds a checksum of its
    tensors, which :func:`load_checkpoint` checks, and ``shaped_by``, the run's
    :func:`fingerprint`, which :func:`train` compares before it resumes.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    state = {
        "model": model.state_dict(),
        "loss": loss_fn.state_dict() if isinstance(loss_fn, torch.nn.Module) else {},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "history": asdict(history) if history is not None else {},
        "epoch": int(epoch),
        "fingerprint": shaped_by or {},
    }
    state["checksum"] = _checksum(state)
    with atomic_file(path) as file:
        torch.save(state, file)


def _read_checkpoint(path):
    """A checkpoint's contents, read with ``weights_only=True`` and checked against its checksum."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train with checkpoint={str(path)!r} first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path} is damaged or not a checkpoint ({error.__class__.__name__}): delete it and train again"
        ) from error
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a checkpoint written by mlcourse.train.save_checkpoint")
    if "checksum" in state and _checksum(state) != state["checksum"]:
        raise ValueError(f"{path} is damaged (its tensors do not match their checksum): delete it and train again")
    return state


def load_checkpoint(path, model, loss_fn=None, optimizer=None):
    """Restore what :func:`save_checkpoint` wrote into ``model`` (and loss, optimiser).

    Loads with ``torch.load(weights_only=True)``: tensors and plain containers only, never
    arbitrary pickled code.

    Returns:
        ``(history, epoch)``: the :class:`TrainingHistory` so far and the epochs completed.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is damaged (its tensors do not match their checksum), is not a
            checkpoint of this course, or does not fit the model.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    return _restore(path, _read_checkpoint(path), model, loss_fn, optimizer)


def _restore(path, state, model, loss_fn=None, optimizer=None):
    """Put a checkpoint's contents (read from ``path``) into ``model``, ``loss_fn`` and ``optimizer``."""
    try:
        model.load_state_dict(state["model"])
        if isinstance(loss_fn, torch.nn.Module) and state["loss"]:
            loss_fn.load_state_dict(state["loss"])
    except RuntimeError as error:
        raise ValueError(
            f"the checkpoint {path} does not fit this model (another architecture or size?): {error}"
        ) from error
    if optimizer is not None and state["optimizer"]:
        optimizer.load_state_dict(state["optimizer"])
    return TrainingHistory(**state["history"]), int(state["epoch"])
