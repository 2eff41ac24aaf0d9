"""The training loop: it learns, it is reproducible, it checkpoints safely, it refuses bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from mlcourse.data.samplers import ClassBalancedBatches
from mlcourse.losses import TripletMarginLoss
from mlcourse.metrics import recall_at_k
from mlcourse.models import EmbeddingNet
from mlcourse.train import (
    StepClock,
    TrainingHistory,
    choose_device,
    default_step,
    embed,
    fingerprint,
    load_checkpoint,
    pair_step,
    recall_on_epoch_end,
    save_checkpoint,
    train,
    train_copy,
)

SMALL = {"embedding_dim": 32, "widths": (8, 16, 32)}


@pytest.fixture(scope="module")
def instrument_clips(smoke):
    train_split = smoke.subset(smoke.meta.split == "train")
    codes, _ = train_split.labels("instrument")
    return np.asarray(train_split.logmel), codes


def small_run(features, codes, epochs=2, seed=0, device="cpu", lr=3e-3, sizes=SMALL, loss_fn=None, **options):
    torch.manual_seed(seed)
    model = EmbeddingNet(**sizes)
    sampler = ClassBalancedBatches(codes, 4, 4, batches_per_epoch=6, seed=seed)
    history = train(
        model,
        loss_fn or TripletMarginLoss(margin=0.2, mining="all"),
        features,
        codes,
        sampler,
        epochs=epochs,
        lr=lr,
        device=device,
        seed=seed,
        progress=False,
        **options,
    )
    return model, history


def chance_recall_at_1(codes):
    """Expected R@1 when the nearest neighbour is a random other clip."""
    sizes = np.bincount(codes)[codes]
    return float(np.mean((sizes - 1) / (len(codes) - 1)))


def mean_triplet_hinge(embeddings, codes, margin=0.2):
    """The triplet hinge averaged over every valid triplet of the set (none left out)."""
    distances = torch.cdist(embeddings, embeddings)
    codes = torch.tensor(codes)
    same = codes[:, None] == codes[None, :]
    positive = same & ~torch.eye(len(codes), dtype=torch.bool)
    valid = positive[:, :, None] & ~same[:, None, :]
    hinges = (distances[:, :, None] - distances[:, None, :] + margin).clamp_min(0)
    return float(hinges[valid].mean())


def test_training_lowers_the_loss_and_beats_chance_recall(instrument_clips):
    features, codes = instrument_clips
    torch.manual_seed(0)
    before = mean_triplet_hinge(embed(EmbeddingNet(**SMALL), features), codes)
    model, history = small_run(features, codes, epochs=4)
    assert len(history.step_losses) == 24 and len(history.epoch_seconds) == 4
    embeddings = embed(model, features)
    assert mean_triplet_hinge(embeddings, codes) < 0.8 * before
    assert recall_at_k(embeddings, codes, ks=(1,))[1] > chance_recall_at_1(codes) + 0.1


def test_same_seed_same_model_other_seed_other_model(instrument_clips):
    features, codes = instrument_clips
    first, _ = small_run(features, codes, epochs=1, seed=1)
    again, _ = small_run(features, codes, epochs=1, seed=1)
    other, _ = small_run(features, codes, epochs=1, seed=2)
    for a, b, c in zip(first.parameters(), again.parameters(), other.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters()))


def test_train_copy_trains_a_copy_and_leaves_the_start_as_it_was(instrument_clips):
    features, codes = instrument_clips
    torch.manual_seed(0)
    start = EmbeddingNet(**SMALL)
    before = {name: value.clone() for name, value in start.state_dict().items()}
    options = dict(epochs=1, lr=3e-3, device="cpu", seed=0, progress=False)
    sampler = ClassBalancedBatches(codes, 4, 4, batches_per_epoch=3, seed=0)
    copied, history = train_copy(start, TripletMarginLoss(0.2, "all"), features, codes, sampler, **options)
    by_hand = EmbeddingNet(**SMALL)
    by_hand.load_state_dict(before)
    expected = train(by_hand, TripletMarginLoss(0.2, "all"), features, codes, sampler, **options)
    assert copied is not start and history.step_losses == expected.step_losses
    for name, value in start.state_dict().items():
        assert torch.equal(value, before[name]), name
    for a, b in zip(copied.state_dict().values(), by_hand.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class CentreLoss(torch.nn.Module):
    """A loss that owns a parameter: squared distance of embeddings to a learned centre."""

    def __init__(self, dim):
        super().__init__()
        self.centre = torch.nn.Parameter(torch.full((dim,), 3.0))

    def forward(self, embeddings, labels):
        return (embeddings - self.centre).pow(2).sum(dim=1).mean()


def test_the_loss_parameters_are_trained_too(instrument_clips):
    features, codes = instrument_clips
    loss = CentreLoss(SMALL["embedding_dim"])
    sampler = ClassBalancedBatches(codes, 2, 2, batches_per_epoch=3, seed=0)
    train(EmbeddingNet(**SMALL), loss, features, codes, sampler, epochs=1, device="cpu", lr=0.1, progress=False)
    assert (loss.centre < 3.0).all()


def test_embed_equals_the_model_in_eval_mode(instrument_clips):
    features, _ = instrument_clips
    model = EmbeddingNet(**SMALL).eval()
    embeddings = embed(model, features[:10], batch_size=3)
    assert embeddings.dtype == torch.float32 and embeddings.shape == (10, 32)
    with torch.no_grad():
        torch.testing.assert_close(embeddings, model(torch.tensor(features[:10])))


def test_checkpoint_round_trip_restores_model_optimiser_and_history(instrument_clips, tmp_path):
    features, codes = instrument_clips
    path = tmp_path / "run" / "model.pt"
    model, history = small_run(features, codes, epochs=2, checkpoint=path)
    restored = EmbeddingNet(**SMALL)
    optimizer = torch.optim.Adam(restored.parameters())
    loaded_history, epoch = load_checkpoint(path, restored, optimizer=optimizer)
    assert epoch == 2 and loaded_history.step_losses == history.step_losses
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert optimizer.state_dict()["state"], "the optimiser's moments were not restored"
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_resuming_equals_training_in_one_go(instrument_clips, tmp_path):
    features, codes = instrument_clips
    straight, _ = small_run(features, codes, epochs=2)
    path = tmp_path / "model.pt"
    small_run(features, codes, epochs=1, checkpoint=path)
    resumed, history = small_run(features, codes, epochs=2, checkpoint=path, resume=True)
    assert len(history.epoch_losses) == 2
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_a_changed_learning_rate_trains_afresh_instead_of_resuming(instrument_clips, tmp_path, capsys):
    """A learner changes a setting and runs the cell again: the checkpoint of the old setting is not reused."""
    features, codes = instrument_clips
    path = tmp_path / "model.pt"
    small_run(features, codes, epochs=2, checkpoint=path)
    capsys.readouterr()
    changed, history = small_run(features, codes, epochs=2, checkpoint=path, resume=True, lr=1e-3)
    said = capsys.readouterr()
    assert "lr" in said.out + said.err and "afresh" in said.out + said.err
    fresh, fresh_history = small_run(features, codes, epochs=2, lr=1e-3)
    assert history.step_losses == fresh_history.step_losses
    for a, b in zip(fresh.state_dict().values(), changed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # The same settings again: the checkpoint (now of lr 1e-3) is used, nothing is trained.
    _, again = small_run(features, codes, epochs=2, checkpoint=path, resume=True, lr=1e-3)
    assert again.step_losses == history.step_losses and again.epoch_seconds == history.epoch_seconds


@pytest.mark.parametrize("change", ["seed", "data", "loss", "model"])
def test_any_change_that_shaped_a_checkpoint_trains_afresh(instrument_clips, tmp_path, capsys, change):
    features, codes = instrument_clips
    path = tmp_path / "model.pt"
    small_run(features, codes, epochs=1, checkpoint=path)
    capsys.readouterr()
    options = {"checkpoint": path, "resume": True}
    if change == "seed":
        options["seed"] = 1
    elif change == "data":
        features = features.copy()
        features[5] += 1
    elif change == "loss":
        options["loss_fn"] = TripletMarginLoss(margin=0.5, mining="all")
    else:
        options["sizes"] = {**SMALL, "embedding_dim": 16}
    _, history = small_run(features, codes, epochs=1, **options)
    assert len(history.epoch_losses) == 1 and "afresh" in capsys.readouterr().out


def test_a_loss_setting_that_its_name_does_not_show_changes_the_fingerprint(instrument_clips):
    """A learner's own loss class, with a temperature but no extra_repr: the setting still counts."""
    features, codes = instrument_clips

    class MyLoss(torch.nn.Module):
        def __init__(self, temperature):
            super().__init__()
            self.temperature = temperature

    sampler = ClassBalancedBatches(codes, 4, 4, batches_per_epoch=2, seed=0)
    model = EmbeddingNet(**SMALL)
    parts = [fingerprint(model, MyLoss(t), features, codes, sampler, default_step, {"lr": 1e-3}) for t in (0.1, 0.2)]
    assert [name for name in parts[0] if parts[0][name] != parts[1][name]] == ["loss"]


def test_a_checkpoint_garbled_in_place_is_refused(instrument_clips, tmp_path):
    features, codes = instrument_clips
    path = tmp_path / "model.pt"
    small_run(features, codes, epochs=1, checkpoint=path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(255 - b for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged.*delete it"):
        load_checkpoint(path, EmbeddingNet(**SMALL))


def test_an_interrupted_save_leaves_no_file(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "model.pt", EmbeddingNet(**SMALL), history=TrainingHistory())
    assert list(tmp_path.iterdir()) == []


def test_bad_checkpoints_are_explained(tmp_path):
    model = EmbeddingNet(**SMALL)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", model)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="damaged or not a checkpoint"):
        load_checkpoint(corrupt, model)
    other = tmp_path / "other.pt"
    save_checkpoint(other, EmbeddingNet(embedding_dim=8, widths=(4,)))
    with pytest.raises(ValueError, match="does not fit this model"):
        load_checkpoint(other, model)


class SlowSampler:
    """A sampler that takes `seconds` to draw each batch of the sampler it wraps."""

    def __init__(self, sampler, seconds):
        self.sampler, self.seconds = sampler, seconds

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        for batch in self.sampler:
            time.sleep(self.seconds)
            yield batch


def slow_step(seconds):
    """The default step, taking at least `seconds` more."""

    def step(*args):
        time.sleep(seconds)
        return default_step(*args)

    return step


@pytest.mark.parametrize("input_sleep, step_sleep", [(0.04, 0.0), (0.0, 0.04), (0.03, 0.02)])
def test_the_epoch_time_is_split_into_waiting_for_batches_and_computing(instrument_clips, input_sleep, step_sleep):
    features, codes = instrument_clips
    sampler = SlowSampler(ClassBalancedBatches(codes, 4, 4, batches_per_epoch=5, seed=0), input_sleep)
    history = train(
        EmbeddingNet(**SMALL),
        TripletMarginLoss(mining="all"),
        features,
        codes,
        sampler,
        epochs=2,
        device="cpu",
        step=slow_step(step_sleep),
        progress=False,
    )
    for wall, waiting, computing in zip(
        history.epoch_seconds, history.epoch_input_seconds, history.epoch_compute_seconds
    ):
        # each sleep is counted on its own side, and the two sides are disjoint parts of the epoch
        assert 5 * input_sleep <= waiting < 5 * input_sleep + 0.1
        assert computing >= 5 * step_sleep
        assert waiting + computing <= wall < waiting + computing + 0.1
    assert history.input_fraction == pytest.approx(sum(history.epoch_input_seconds) / history.total_seconds)
    assert history.compute_seconds_per_step == pytest.approx(sum(history.epoch_compute_seconds) / 10)


def test_the_step_clock_gives_index_tensors_and_times_its_parts():
    clock = StepClock("cpu")
    clock.start()
    seen = []
    for batch in clock.batches(SlowSampler([[0, 1], [2, 3]], 0.01)):
        with clock.step():
            time.sleep(0.02)
        seen.append(batch)
    wall = clock.stop()
    assert all(isinstance(b, torch.Tensor) for b in seen) and [b.tolist() for b in seen] == [[0, 1], [2, 3]]
    assert 0.02 <= clock.input_seconds < 0.04 and 0.04 <= clock.compute_seconds() <= wall


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_clock_reads_the_gpu_time_not_the_launch_time():
    device = torch.device("cuda")
    matrix = torch.randn(4096, 4096, device=device)
    torch.tanh(matrix @ matrix)  # cuBLAS starts up (on the host) before the timing
    clock = StepClock(device)
    clock.start()
    launch_seconds = []
    for batch in clock.batches([[0, 1]] * 5):
        assert batch.device.type == "cuda"
        started = time.perf_counter()
        with clock.step():
            for _ in range(20):  # queued: the host returns before the GPU is done
                matrix = torch.tanh(matrix @ matrix)
        launch_seconds.append(time.perf_counter() - started)
    wall = clock.stop()
    gpu = clock.compute_seconds()
    assert 10 * sum(launch_seconds) < gpu <= wall


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_bfloat16_autocast_gives_the_float32_losses_within_its_precision(instrument_clips):
    """amp=True (bfloat16 autocast, the default on CUDA) against amp=False, from the same weights on
    the same batches. bfloat16 keeps 8 significant bits (a relative error up to 0.4% per number):
    the first step's loss stays within 2% of float32's, each epoch's mean loss within 5%."""
    features, codes = instrument_clips
    histories = {amp: small_run(features, codes, device="cuda", amp=amp)[1] for amp in (True, False)}
    bf16, fp32 = histories[True], histories[False]
    assert bf16.step_losses[0] == pytest.approx(fp32.step_losses[0], rel=0.02)
    np.testing.assert_allclose(bf16.epoch_losses, fp32.epoch_losses, rtol=0.05)


def test_a_checkpoint_from_before_the_step_clock_still_loads(instrument_clips, tmp_path):
    features, codes = instrument_clips
    path = tmp_path / "model.pt"
    model, history = small_run(features, codes, epochs=1, checkpoint=path)
    state = torch.load(path, weights_only=True)
    del state["history"]["epoch_input_seconds"], state["history"]["epoch_compute_seconds"]
    torch.save(state, path)
    loaded, epoch = load_checkpoint(path, EmbeddingNet(**SMALL))
    assert epoch == 1 and loaded.step_losses == history.step_losses and loaded.epoch_input_seconds == []


def test_bad_training_input_is_explained(instrument_clips):
    features, codes = instrument_clips
    sampler = ClassBalancedBatches(codes, 2, 2)
    with pytest.raises(ValueError, match="differ in length"):
        train(EmbeddingNet(**SMALL), TripletMarginLoss(), features, codes[:-1], sampler)
    with pytest.raises(ValueError, match="epochs"):
        train(EmbeddingNet(**SMALL), TripletMarginLoss(), features, codes, sampler, epochs=0)


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            choose_device("cuda")
    with pytest.raises(ValueError):
        choose_device("abacus")


def test_history_keeps_the_losss_stats_of_every_step():
    from mlcourse.data.samplers import ClassBalancedBatches
    from mlcourse.losses import TripletMarginLoss
    from mlcourse.models import EmbeddingNet

    features = torch.randn(24, 128, 130)
    labels = np.repeat(np.arange(6), 4)
    sampler = ClassBalancedBatches(labels, 3, 4, batches_per_epoch=3, seed=0)
    history = train(
        EmbeddingNet(embedding_dim=8, widths=(4,)),
        TripletMarginLoss(0.2),
        features,
        labels,
        sampler,
        epochs=2,
        progress=False,
    )
    assert len(history.step_stats) == len(history.step_losses) == 6
    assert [stats["loss"] for stats in history.step_stats] == pytest.approx(history.step_losses)
    assert all(0 <= stats["active_share_of_valid"] <= 1 for stats in history.step_stats)


def test_sampled_triplets_step_scores_exactly_the_batchs_thirds():
    from mlcourse.losses import TripletMarginLoss, triplet_margin_loss
    from mlcourse.train import sampled_triplets_step

    torch.manual_seed(0)
    features = torch.randn(10, 5)
    model = torch.nn.Linear(5, 3)
    batch = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8])
    loss = sampled_triplets_step(model, TripletMarginLoss(0.5), features, None, batch)
    embeddings = model(features)
    hinges = torch.relu(
        (embeddings[0:3] - embeddings[3:6]).norm(dim=1) - (embeddings[0:3] - embeddings[6:9]).norm(dim=1) + 0.5
    )
    expected = hinges.sum() / max(1, int((hinges > 0).sum()))
    torch.testing.assert_close(loss, expected)
    rows = torch.arange(3)
    torch.testing.assert_close(loss, triplet_margin_loss(embeddings, None, 0.5, triplets=(rows, rows + 3, rows + 6)))


def test_pair_step_compares_each_first_clip_with_its_second():
    from mlcourse.losses import contrastive_loss

    torch.manual_seed(0)
    features = torch.randn(10, 5)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1, 0])
    model = torch.nn.Linear(5, 3)
    batch = torch.tensor([7, 2, 9, 4, 3, 0, 8, 1])  # pairs (7, 3), (2, 0), (9, 8), (4, 1)
    loss = pair_step(model, contrastive_loss, features, labels, batch)
    embeddings = model(features)
    firsts, seconds = batch[:4], batch[4:]
    distances = (embeddings[firsts] - embeddings[seconds]).norm(dim=1)
    similar = labels[firsts] == labels[seconds]
    assert similar.tolist() == [True, True, False, True]
    positive_hinges = distances[similar]  # pulled all the way: margin 0
    negative_hinges = torch.relu(1.0 - distances[~similar])
    expected = positive_hinges.sum() / max(1, int((positive_hinges > 0).sum())) + negative_hinges.sum() / max(
        1, int((negative_hinges > 0).sum())
    )
    torch.testing.assert_close(loss, expected)


def test_recall_on_epoch_end_scores_the_model_of_that_epoch_on_other_groups():
    torch.manual_seed(0)
    features = torch.randn(30, 6)
    labels = np.arange(30) % 3
    groups = np.arange(30) // 2  # pairs of clips: one group each
    model = torch.nn.Linear(6, 4)
    evaluation = recall_on_epoch_end(features, labels, groups=groups, ks=(1, 3))(0, model)
    with torch.no_grad():
        distances = torch.cdist(model(features), model(features))
    distances[torch.tensor(groups[:, None] == groups[None, :])] = float("inf")
    nearest = distances.argsort(dim=1).numpy()
    hits = labels[nearest] == labels[:, None]
    assert evaluation == pytest.approx({"valid R@1": hits[:, 0].mean(), "valid R@3": hits[:, :3].any(axis=1).mean()})


def test_recall_on_epoch_end_goes_into_the_history(instrument_clips):
    features, codes = instrument_clips
    _, history = small_run(
        features, codes, epochs=2, on_epoch_end=recall_on_epoch_end(features[:40], codes[:40], ks=(1, 2))
    )
    assert [sorted(evaluation) for evaluation in history.evaluations] == [["valid R@1", "valid R@2"]] * 2
    assert all(0 <= value <= 1 for evaluation in history.evaluations for value in evaluation.values())
