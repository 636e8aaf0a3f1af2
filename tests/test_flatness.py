"""Flatness measures against closed forms on quadratics, BN folding, and a tiny real U-Net."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from model_helpers import with_random_batch_norm
from torch import nn

from unetscape.measures.flatness import (
    ModelLoss,
    average_sharpness,
    flat_parameters,
    flatness_summary,
    fold_batch_norm,
    norm_measures,
    pac_bayes_sigma,
    resolve_flatness_settings,
    worst_case_sharpness,
)
from unetscape.models.losses import dice_loss
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny tensors: with several threads, synchronisation costs more than the arithmetic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# a quadratic L(w) = 1/2 sum_i lambda_i (w_i - w*_i)^2, measured at its minimum w = w*

LAM = torch.tensor([4.0, 1.0, 0.5, 2.0, 0.25, 3.0, 1.5, 0.1], dtype=torch.float64)
W_STAR = torch.tensor([0.5, -2.0, 1.0, 0.3, -1.2, 0.8, -0.4, 2.5], dtype=torch.float64)
# lambda_i w_i^2 = 1.0, 4.0, 0.5, 0.18, 0.36, 1.92, 0.24, 0.625: the largest (4.0, axis 1) is
# well separated from the next (1.92), so projected ascent converges fast.


def quadratic(lam=LAM, w_star=W_STAR, linear=None):
    def loss(w):
        value = 0.5 * (lam * (w - w_star) ** 2).sum()
        if linear is not None:
            value = value + (linear * (w - w_star)).sum()
        return float(value)

    def loss_and_gradient(w):
        grad = lam * (w - w_star)
        if linear is not None:
            grad = grad + linear
        return loss(w), grad

    return loss, loss_and_gradient


def average_closed_form(rho, lam=LAM, w=W_STAR):
    # E[1/2 sum lambda_i (rho |w_i| z_i)^2] = rho^2 / 2 sum lambda_i w_i^2
    return 0.5 * rho**2 * float((lam * w**2).sum())


@pytest.mark.parametrize("antithetic", [True, False])
def test_average_sharpness_quadratic_within_standard_errors(antithetic):
    loss, _ = quadratic()
    rho = 0.1
    result = average_sharpness(loss, W_STAR, rho, samples=200, seed=3, antithetic=antithetic)
    truth = average_closed_form(rho)
    assert result["se"] > 0
    assert abs(result["mean"] - truth) < 4 * result["se"]
    assert result["base"] == 0.0 and result["samples"] == 200 and result["antithetic"] is antithetic


def test_average_sharpness_quadratic_exact_with_many_samples():
    loss, _ = quadratic()
    rho = 0.05
    result = average_sharpness(loss, W_STAR, rho, samples=40000, seed=1)
    truth = average_closed_form(rho)
    # relative standard error sqrt(2 sum a_i^2) / sum a_i / sqrt(20000 pairs) = 0.54%
    assert result["se"] < 0.006 * truth
    assert result["mean"] == pytest.approx(truth, rel=0.025)


def test_average_sharpness_antithetic_cancels_the_gradient_term():
    # A non-zero gradient at w adds g . delta to every sample: zero mean, large variance.
    linear = torch.linspace(-3.0, 3.0, len(LAM), dtype=torch.float64)
    loss, _ = quadratic(linear=linear)
    rho = 0.1
    truth = average_closed_form(rho)
    plain = average_sharpness(loss, W_STAR, rho, samples=400, seed=0, antithetic=False)
    paired = average_sharpness(loss, W_STAR, rho, samples=400, seed=0, antithetic=True)
    assert abs(plain["mean"] - truth) < 4 * plain["se"]
    assert abs(paired["mean"] - truth) < 4 * paired["se"]
    assert paired["se"] < plain["se"] / 5


def test_average_sharpness_zero_coordinates_do_not_move():
    w = W_STAR.clone()
    w[0] = 0.0  # a huge curvature on a coordinate that is zero: adaptive noise never reaches it
    lam = LAM.clone()
    lam[0] = 1e6
    loss, _ = quadratic(lam=lam, w_star=w)
    result = average_sharpness(loss, w, 0.05, samples=40000, seed=2)
    assert result["mean"] == pytest.approx(average_closed_form(0.05, lam, w), rel=0.025)


def test_worst_case_sharpness_quadratic_reaches_the_largest_axis():
    loss, loss_and_gradient = quadratic()
    rho = 0.2
    a = LAM * W_STAR**2
    truth = 0.5 * rho**2 * float(a.max())
    result = worst_case_sharpness(loss_and_gradient, W_STAR, rho, steps=30, step_size=1.0, start_radius=0.1, seed=0, loss=loss)
    assert result["value"] == pytest.approx(truth, rel=1e-4)
    assert result["value"] <= truth * (1 + 1e-12)  # a lower bound: every iterate is in the ball
    assert result["u_norm"] == pytest.approx(rho, rel=1e-9)
    assert result["base"] == 0.0


def test_worst_case_sharpness_linear_loss_from_zero_in_one_step():
    # L(w + delta) - L(w) = g . delta: the maximum on ||delta / |w| || <= rho is rho ||g |w| ||,
    # reached by the first normalised step from u = 0 (the start is w itself: no extra L(w)).
    g = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    w = torch.tensor([2.0, 0.5, -1.0, 0.0], dtype=torch.float64)
    calls = []

    def loss_and_gradient(v):
        calls.append(v.clone())
        return float(g @ v), g.clone()

    rho = 0.3
    result = worst_case_sharpness(loss_and_gradient, w, rho, steps=1, step_size=1.0)
    assert result["value"] == pytest.approx(rho * float((g * w.abs()).norm()), rel=1e-12)
    assert len(calls) == 2 and torch.equal(calls[0], w)  # one gradient at w, one final value
    assert calls[1][3] == 0.0  # the zero coordinate did not move


def test_worst_case_sharpness_ignores_zero_coordinates():
    w = W_STAR.clone()
    w[0] = 0.0
    lam = LAM.clone()
    lam[0] = 1e6
    loss, loss_and_gradient = quadratic(lam=lam, w_star=w)
    rho = 0.2
    truth = 0.5 * rho**2 * float((lam * w**2).max())  # axis 1 again: lambda_0 w_0^2 = 0
    result = worst_case_sharpness(loss_and_gradient, w, rho, steps=30, start_radius=0.1, seed=4, loss=loss)
    assert result["value"] == pytest.approx(truth, rel=1e-4)


def test_worst_case_at_exact_minimum_from_zero_stops():
    loss, loss_and_gradient = quadratic()
    result = worst_case_sharpness(loss_and_gradient, W_STAR, 0.1, steps=5, start_radius=0.0)
    assert result["value"] == 0.0 and result["steps"] == 0


def quadratic_metric(lam=LAM, w_star=W_STAR):
    """metric(v) = -1/2 sum lambda_i (v_i - w*_i)^2: its drop at w* under noise s z is 1/2 sum lambda_i s_i^2 z_i^2."""
    return lambda v: float(-0.5 * (lam * (v - w_star) ** 2).sum())


def test_pac_bayes_bisection_brackets_the_crossing_of_its_own_draws():
    # The same draws regenerated independently: drop(sigma) = sigma^2 C with C their mean of
    # 1/2 sum lambda_i z_i^2, so the crossing is sqrt(target / C), exactly.
    seed, samples, target, iterations = 5, 6, 0.02, 12
    result = pac_bayes_sigma(quadratic_metric(), W_STAR, target, (1e-4, 1.0), iterations, samples, seed)
    generator = torch.Generator().manual_seed(seed)
    c = np.mean([0.5 * float((LAM * torch.randn(len(LAM), generator=generator, dtype=torch.float64) ** 2).sum())
                 for _ in range(samples)])
    crossing = math.sqrt(target / c)
    assert result["status"] == "bracketed" and result["bracketed"]
    assert result["sigma_low"] <= crossing <= result["sigma_high"]
    assert result["sigma_high"] / result["sigma_low"] == pytest.approx(1e4 ** (1 / 2**iterations), rel=1e-9)
    assert result["measure"] == pytest.approx(1 / result["sigma"] ** 2)
    assert len(result["evaluations"]) == iterations
    # Common random numbers: the recorded drops grow with sigma.
    pairs = sorted(result["evaluations"])
    assert all(a[1] < b[1] for a, b in zip(pairs, pairs[1:])) and result["monotone"]


def test_pac_bayes_flags_a_drop_that_does_not_grow_with_sigma():
    # A metric that noise first lowers and then raises again: drop = 5 s^2 - 50 s^4 (mean of z^2 ~ 1).
    def metric(v):
        r2 = float((v**2).mean())
        return -5 * r2 + 50 * r2**2

    w = torch.zeros(400, dtype=torch.float64)
    result = pac_bayes_sigma(metric, w, 0.1, (1e-3, 10.0), iterations=6, samples=2, seed=0)
    assert not result["monotone"]
    assert result["evaluations"][0][0] == pytest.approx(0.1) and result["evaluations"][1][0] == pytest.approx(1.0)


def test_pac_bayes_sigma_closed_form_with_many_samples():
    # E drop = sigma^2 / 2 sum lambda_i = target at sigma* = sqrt(2 target / sum lambda).
    target = 0.05
    # 4000 draws: the relative standard error of sigma is 0.27%; the bracket is 0.45% wide.
    result = pac_bayes_sigma(quadratic_metric(), W_STAR, target, (1e-2, 1.0), iterations=10, samples=4000, seed=0)
    assert result["sigma"] == pytest.approx(math.sqrt(2 * target / float(LAM.sum())), rel=0.015)


def test_pac_bayes_magnitude_aware_closed_form_with_many_samples():
    # E drop = 1/2 sum lambda_i (sigma'^2 w_i^2 + eps^2) = target.
    target, eps = 0.05, 0.05  # eps^2 sum lambda = 0.032: a third of the target, so it matters
    result = pac_bayes_sigma(quadratic_metric(), W_STAR, target, (1e-2, 1.0), iterations=10, samples=4000,
                             seed=0, magnitude_aware=True, eps=eps)
    truth = math.sqrt((2 * target - eps**2 * float(LAM.sum())) / float((LAM * W_STAR**2).sum()))
    assert result["sigma"] == pytest.approx(truth, rel=0.015)
    assert result["magnitude_aware"] and result["eps"] == eps


def test_pac_bayes_out_of_range_is_a_bound_and_says_so():
    metric = quadratic_metric()
    too_flat = pac_bayes_sigma(metric, W_STAR, 1e6, (1e-3, 1.0), iterations=5, samples=3)
    assert too_flat["status"] == "within_target_at_sigma_hi" and not too_flat["bracketed"]
    assert too_flat["sigma"] == 1.0 and len(too_flat["evaluations"]) == 6
    too_sharp = pac_bayes_sigma(metric, W_STAR, 1e-12, (1e-3, 1.0), iterations=5, samples=3)
    assert too_sharp["status"] == "exceeds_target_at_sigma_lo"
    assert too_sharp["sigma"] == 1e-3 and len(too_sharp["evaluations"]) == 6


def test_measures_are_deterministic_in_their_seed():
    loss, loss_and_gradient = quadratic()
    metric = quadratic_metric()
    runs = [
        lambda s: average_sharpness(loss, W_STAR, 0.1, samples=10, seed=s)["mean"],
        lambda s: worst_case_sharpness(loss_and_gradient, W_STAR, 0.1, steps=2, start_radius=0.5, seed=s)["value"],
        lambda s: pac_bayes_sigma(metric, W_STAR, 0.02, iterations=6, samples=2, seed=s)["sigma"],
    ]
    for run in runs:
        assert run(7) == run(7)
        assert run(7) != run(8)


def test_bad_arguments_name_the_problem():
    loss, loss_and_gradient = quadratic()
    with pytest.raises(ValueError, match="rho"):
        average_sharpness(loss, W_STAR, 0.0)
    with pytest.raises(ValueError, match="even"):
        average_sharpness(loss, W_STAR, 0.1, samples=5)
    with pytest.raises(ValueError, match="sigma_range"):
        pac_bayes_sigma(quadratic_metric(), W_STAR, sigma_range=(1.0, 0.1))
    with pytest.raises(ValueError, match="seed"):
        average_sharpness(loss, W_STAR, 0.1, seed=1.5)
    with pytest.raises(ValueError, match="1-D"):
        worst_case_sharpness(loss_and_gradient, W_STAR.reshape(2, 4), 0.1)


# ---------------------------------------------------------------------------------------------
# norms


def test_norm_measures_against_a_hand_computation():
    rng = np.random.default_rng(0)
    arrays = {"a.weight": rng.standard_normal((3, 2, 3, 3)), "a.bias": rng.standard_normal(3),
              "b.weight": rng.standard_normal((1, 3, 1, 1)), "c.d.weight": rng.standard_normal((2, 2))}
    start = {k: rng.standard_normal(v.shape) for k, v in arrays.items()}
    result = norm_measures({k: torch.from_numpy(v) for k, v in arrays.items()},
                           {k: torch.from_numpy(v) for k, v in start.items()})
    layer_sq = [np.sum(arrays["a.weight"] ** 2) + np.sum(arrays["a.bias"] ** 2),
                np.sum(arrays["b.weight"] ** 2), np.sum(arrays["c.d.weight"] ** 2)]
    assert result["layers"] == 3
    assert result["frobenius_sq_sum"] == pytest.approx(sum(layer_sq), rel=1e-12)
    assert result["log_prod_frobenius"] == pytest.approx(math.log(math.prod(math.sqrt(s) for s in layer_sq)), rel=1e-12)
    distance = math.sqrt(sum(np.sum((arrays[k] - start[k]) ** 2) for k in arrays))
    assert result["distance_from_init"] == pytest.approx(distance, rel=1e-12)
    assert norm_measures({k: torch.from_numpy(v) for k, v in arrays.items()})["distance_from_init"] is None


def test_norm_measures_refuse_mismatched_initial_weights():
    params = {"a.weight": torch.ones(2, 2)}
    with pytest.raises(ValueError, match="do not match"):
        norm_measures(params, {"b.weight": torch.ones(2, 2)})
    with pytest.raises(ValueError, match="shape"):
        norm_measures(params, {"a.weight": torch.ones(2, 3)})


# ---------------------------------------------------------------------------------------------
# the measured model: BN folding and the whole-set loss


def tiny_model(norm="batch", skip="concat", seed=0):
    """A depth-1 U-Net with non-trivial BN statistics and affine parameters."""
    torch.manual_seed(seed)
    return with_random_batch_norm(build_model({"depth": 1, "base_width": 4, "norm": norm, "skip": skip}))


def tiny_data(n=6, size=8, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=generator)
    y = (torch.rand(n, 1, size, size, generator=generator) > 0.6).float()
    return x, y


@pytest.mark.parametrize("skip", ["concat", "add", "none"])
def test_folded_copy_computes_the_same_outputs(skip):
    model = tiny_model("batch", skip)
    before = copy.deepcopy(model.state_dict())
    folded = fold_batch_norm(model)
    x, _ = tiny_data()
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert all(p.requires_grad for p in folded.parameters())
    assert not folded.training
    # Every conv that fed a BN now has a bias; the source model is unchanged.
    convs = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    # Gradients flow through the copy (the activations are not in place on a needed tensor).
    folded(x).sum().backward()
    assert all(p.grad is not None for p in folded.parameters())


def test_folding_a_plain_model_keeps_its_parameters():
    model = tiny_model("none")
    folded = fold_batch_norm(model)
    assert [n for n, _ in folded.named_parameters()] == [n for n, _ in model.named_parameters()]
    torch.testing.assert_close(flat_parameters(folded), flat_parameters(model), rtol=0, atol=0)


def test_unfoldable_batch_norm_is_refused():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 2, 3))
    with pytest.raises(ValueError, match="cannot be folded"):
        fold_batch_norm(model)


def test_model_loss_matches_the_whole_set_evaluation_and_autograd():
    model = tiny_model("batch")
    folded = fold_batch_norm(model)
    x, y = tiny_data(n=7)
    objective = ModelLoss(folded, x, y, batch_size=3)  # 3 + 3 + 1 images: uneven batches
    expected = evaluate(model.eval(), x, y, batch_size=7)
    loss, dice = objective.evaluate(objective.w0)
    assert loss == pytest.approx(expected["loss"], rel=1e-6)
    assert dice == pytest.approx(expected["dice"], rel=1e-12)
    # The gradient of the whole-set mean in one batch, by plain autograd on a fresh copy.
    reference = copy.deepcopy(folded)
    dice_loss(reference(x), y).backward()
    expected_grad = torch.cat([p.grad.reshape(-1).double() for p in reference.parameters()])
    value, grad = objective.loss_and_gradient(objective.w0)
    assert value == pytest.approx(loss, rel=1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)
    assert (objective.forward_passes, objective.gradient_passes) == (1, 1)


def test_model_loss_leaves_the_model_alone_and_moves_the_copy():
    model = tiny_model("none")
    before = flat_parameters(model)
    x, y = tiny_data()
    objective = ModelLoss(model, x, y)
    w = objective.w0 + 0.1
    moved = objective.loss(w)
    assert moved != objective.loss(objective.w0)
    objective.loss_and_gradient(w)
    # Between evaluations the copy holds w0 again, so its norms are those of the measured point.
    torch.testing.assert_close(flat_parameters(objective.model), objective.w0, rtol=0, atol=0)
    torch.testing.assert_close(flat_parameters(model), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="shape"):
        objective.loss(w[:-1])


# ---------------------------------------------------------------------------------------------
# a tiny real U-Net


def learnable_data(n=8, size=8, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=generator)
    return x, (x[:, :1] > 0.5).float()  # a mask the model can learn: red above one half


def trained_tiny_model(steps=150, seed=0):
    """A depth-1 batch-norm U-Net trained near a minimum of its 8 images (sharpness is defined there).

    (The plain tiny U-Net falls into the Dice loss's all-foreground trap on these images, where
    the logits saturate and every gradient is zero; the batch-norm one learns the masks.)
    """
    torch.manual_seed(seed)
    model = build_model({"depth": 1, "base_width": 4, "norm": "batch"})
    x, y = learnable_data()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        dice_loss(model(x), y).backward()
        optimizer.step()
    return model.eval(), x, y


@pytest.fixture(scope="module")
def tiny_objective():
    model, x, y = trained_tiny_model()
    return ModelLoss(fold_batch_norm(model), x, y, batch_size=4)


def test_every_measure_runs_on_a_real_model_in_a_sensible_order(tiny_objective):
    objective = tiny_objective
    w = objective.w0
    small = average_sharpness(objective.loss, w, 0.02, samples=8, seed=0)
    large = average_sharpness(objective.loss, w, 0.2, samples=8, seed=0)
    assert math.isfinite(small["mean"]) and math.isfinite(large["mean"])
    assert large["mean"] > small["mean"]
    worst_small = worst_case_sharpness(objective.loss_and_gradient, w, 0.02, steps=3, loss=objective.loss)
    worst_large = worst_case_sharpness(objective.loss_and_gradient, w, 0.2, steps=3, loss=objective.loss)
    assert 0 < worst_small["value"] < worst_large["value"]
    tight = pac_bayes_sigma(objective.dice, w, 0.02, (1e-4, 10.0), iterations=6, samples=2, seed=0)
    loose = pac_bayes_sigma(objective.dice, w, 0.2, (1e-4, 10.0), iterations=6, samples=2, seed=0)
    assert tight["bracketed"] and loose["bracketed"]
    assert tight["sigma"] <= loose["sigma"]
    norms = norm_measures(objective.model, objective.model)
    assert norms["frobenius_sq_sum"] == pytest.approx(float(w @ w), rel=1e-12)
    assert norms["distance_from_init"] == 0.0 and math.isfinite(norms["log_prod_frobenius"])


# ---------------------------------------------------------------------------------------------
# the summary of one model

SMALL = {"average_samples": 4, "worst_steps": 2, "pac_samples": 2, "pac_iterations": 3, "pac_sigma_range": [1e-3, 10.0],
         "batch_size": 3}


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_flatness_summary_wires_every_measure(norm):
    if norm == "batch":
        model, x, y = trained_tiny_model(steps=60)
    else:  # untrained: a non-zero gradient is all the worst case needs here
        model, (x, y) = tiny_model("none"), learnable_data()
    torch.manual_seed(1)
    initial = build_model({"depth": 1, "base_width": 4, "norm": norm}).eval()
    summary = flatness_summary(model, x, y, initial=initial, settings=SMALL, log=lambda _: None)
    json.dumps(summary)  # JSON-ready
    assert summary["finite"] and summary["batch_norms_folded"] == (6 if norm == "batch" else 0)
    settings = resolve_flatness_settings(SMALL)
    folded = fold_batch_norm(model)
    w = flat_parameters(folded)
    assert summary["parameters"] == w.numel() and summary["images"] == 8
    # Each number is what its function gives with the recorded seed on the folded model.
    objective = ModelLoss(folded, x, y)
    average = average_sharpness(objective.loss, w, settings["average_rho"], 4, summary["seeds"]["average"])
    assert summary["average_sharpness"] == pytest.approx(average["mean"], rel=1e-6, abs=1e-9)
    pac = pac_bayes_sigma(objective.dice, w, settings["pac_target"], settings["pac_magnitude_range"], 3, 2,
                          summary["seeds"]["pac_bayes_mag"], magnitude_aware=True, eps=settings["pac_eps"])
    assert summary["pac_bayes_mag_sigma"] == pytest.approx(pac["sigma"])
    assert summary["pac_bayes_flatness"] == pytest.approx(1 / summary["pac_bayes_sigma"] ** 2)
    distance = float((w - flat_parameters(fold_batch_norm(initial))).norm())
    assert summary["distance_from_init"] == pytest.approx(distance, rel=1e-9)
    assert summary["frobenius_sq_sum"] == pytest.approx(float(w @ w), rel=1e-9)
    # The cost, counted independently of the model's counters: one shared pass at w, the
    # average's draws, the worst case's final point, every PAC-Bayes expectation.
    pac_draws = sum(len(summary["details"][k]["evaluations"]) * 2 for k in ("pac_bayes", "pac_bayes_mag"))
    assert summary["forward_passes"] == 1 + 4 + 1 + pac_draws
    assert summary["gradient_passes"] == summary["details"]["worst"]["steps"] == 2
    # Same seed, same numbers.
    again = flatness_summary(model, x, y, initial=initial, settings=SMALL, log=lambda _: None)
    assert again == summary


def test_flatness_summary_of_a_diverged_model_has_no_numbers():
    model, (x, y) = tiny_model("none"), learnable_data()
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    summary = flatness_summary(model, x, y, settings=SMALL, log=lambda _: None)
    assert summary["finite"] is False
    assert summary["average_sharpness"] is None and summary["pac_bayes_sigma"] is None
    assert summary["forward_passes"] == 1
    json.dumps(summary)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"rho": 0.1}, "unknown flatness settings"),
        ({"average_samples": 5}, "average_samples must be even"),
        ({"average_samples": 2}, "average_samples must be an integer >= 4"),
        ({"worst_rho": 0}, "worst_rho must be a number > 0"),
        ({"pac_sigma_range": [1.0, 0.1]}, "pac_sigma_range"),
        ({"pac_iterations": True}, "pac_iterations"),
        ({"seed": -1}, "seed"),
    ],
)
def test_flatness_settings_errors_name_the_key(settings, match):
    with pytest.raises(ValueError, match=match):
        resolve_flatness_settings(settings)
