import math

import pytest
import torch

from unetscape.models.losses import (
    PreparedMasks,
    dice_loss,
    hard_dice_per_image,
    iou_per_image,
    metrics_per_image,
    soft_dice_loss_per_image,
)


def hand_soft_dice(logits, masks):
    """Plain-Python loop over pixels: 1 - (2 sum pg + 1) / (sum p + sum g + 1), mean over images."""
    losses = []
    for img_logits, img_mask in zip(logits.tolist(), masks.tolist()):
        inter = sp = sg = 0.0
        for row_l, row_g in zip(img_logits, img_mask):
            for z, g in zip(row_l, row_g):
                p = 1 / (1 + math.exp(-z))
                inter += p * g
                sp += p
                sg += g
        losses.append(1 - (2 * inter + 1) / (sp + sg + 1))
    return sum(losses) / len(losses)


def test_dice_loss_matches_hand_computation():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 6, 7, generator=gen, dtype=torch.float64) * 3
    masks = (torch.rand(5, 6, 7, generator=gen) > 0.6).double()
    assert dice_loss(logits, masks).item() == pytest.approx(hand_soft_dice(logits, masks), rel=1e-12)


def test_dice_loss_of_perfect_and_inverted_predictions():
    masks = torch.zeros(2, 8, 8)
    masks[:, 2:6, 2:6] = 1
    perfect = (masks * 2 - 1) * 50  # sigmoid saturates to the mask itself
    assert dice_loss(perfect, masks).item() == pytest.approx(0.0, abs=1e-6)
    # No overlap at all: loss = 1 - 1 / (|P| + |G| + 1)
    inverted = -perfect
    expected = 1 - 1 / (48 + 16 + 1)
    assert dice_loss(inverted, masks).item() == pytest.approx(expected, rel=1e-5)


def test_dice_loss_is_independent_of_batch_size():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(12, 1, 9, 9, generator=gen, dtype=torch.float64)
    masks = (torch.rand(12, 1, 9, 9, generator=gen) > 0.5).double()
    whole = dice_loss(logits, masks).item()
    for batch in (1, 5, 12):
        parts = [
            soft_dice_loss_per_image(logits[i : i + batch], masks[i : i + batch]).sum().item()
            for i in range(0, 12, batch)
        ]
        assert sum(parts) / 12 == pytest.approx(whole, rel=1e-12)


def test_hard_dice_and_iou():
    masks = torch.zeros(3, 4, 4)
    masks[0, :2] = 1  # 8 pixels
    masks[1, :1] = 1  # 4 pixels; prediction empty -> 0
    logits = -torch.ones(3, 4, 4)
    logits[0, :1] = 1  # predicts 4 of the 8 mask pixels
    dice = hard_dice_per_image(logits, masks)
    iou = iou_per_image(logits, masks)
    assert dice.tolist() == pytest.approx([2 * 4 / 12, 0.0, 1.0])  # both empty -> 1
    assert iou.tolist() == pytest.approx([4 / 8, 0.0, 1.0])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="do not match"):
        dice_loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 5))


def separate_metrics(logits, masks):
    return torch.stack([
        soft_dice_loss_per_image(logits, masks).double(),
        hard_dice_per_image(logits, masks),
        iou_per_image(logits, masks),
    ], dim=1)


def test_metrics_in_one_pass_equal_the_separate_metrics_bit_for_bit():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 1, 5, 4, generator=gen) * 2
    masks = (torch.rand(6, 1, 5, 4, generator=gen) > 0.5).float()
    masks[0] = 0  # empty mask
    logits[1] = -1  # empty prediction
    masks[2], logits[2] = 0, -1  # both empty: Dice and IoU are 1
    prepared = PreparedMasks.of(masks)
    got = metrics_per_image(logits, prepared)
    assert torch.equal(got, separate_metrics(logits, masks))
    assert got[2, 1] == got[2, 2] == 1
    assert torch.equal(metrics_per_image(logits[2:5], prepared[2:5]), got[2:5])


def test_metrics_of_several_points_at_once_equal_one_point_at_a_time():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 4, 1, 6, 6, generator=gen)  # (points, images, C, H, W)
    masks = (torch.rand(4, 1, 6, 6, generator=gen) > 0.5).float()
    got = metrics_per_image(logits, PreparedMasks.of(masks))
    assert got.shape == (3, 4, 3)
    for point in range(3):
        assert torch.equal(got[point], separate_metrics(logits[point], masks))


def test_metrics_refuse_logits_that_do_not_match_the_masks():
    prepared = PreparedMasks.of(torch.zeros(4, 1, 6, 6))
    for bad in (torch.zeros(3, 1, 6, 6), torch.zeros(4, 1, 6, 5), torch.zeros(2, 3, 1, 6, 6)):
        with pytest.raises(ValueError, match="do not match"):
            metrics_per_image(bad, prepared)


# --- the field's standard losses (training.loss) -----------------------------------------------

from unetscape.models.losses import LOSSES, loss_per_image, training_loss  # noqa: E402


def hand_loss(name, logits, masks):
    """The documented definition of each loss, pixel by pixel in plain Python, per image."""
    out = []
    for img_logits, img_mask in zip(logits.reshape(len(logits), -1).tolist(), masks.reshape(len(masks), -1).tolist()):
        tp = fp = fn = sp = sg = bce = focal = 0.0
        for z, g in zip(img_logits, img_mask):
            p = 1 / (1 + math.exp(-z))
            tp, fp, fn = tp + p * g, fp + p * (1 - g), fn + (1 - p) * g
            sp, sg = sp + p, sg + g
            b = -(g * math.log(p) + (1 - g) * math.log(1 - p))
            bce += b
            p_t = p if g == 1 else 1 - p
            focal += (1 - p_t) ** 2 * b
        n = len(img_logits)
        dice = 1 - (2 * tp + 1) / (sp + sg + 1)
        out.append({
            "dice": dice,
            "bce": bce / n,
            "dice_bce": dice + bce / n,
            "focal": focal / n,
            "tversky": 1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1),
        }[name])
    return out


def random_batch(seed, shape=(4, 1, 5, 6)):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=gen, dtype=torch.float64) * 2
    masks = (torch.rand(*shape, generator=gen) > 0.6).double()
    masks[0] = 0  # an empty mask
    return logits, masks


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_matches_its_definition(name):
    logits, masks = random_batch(5)
    got = loss_per_image(name)(logits, masks)
    assert got.shape == (4,)
    assert got.tolist() == pytest.approx(hand_loss(name, logits, masks), rel=1e-10)
    assert training_loss(name)(logits, masks).item() == pytest.approx(got.mean().item(), rel=1e-12)


def test_default_loss_is_the_soft_dice_loss_exactly():
    logits, masks = random_batch(6)
    assert loss_per_image("dice") is soft_dice_loss_per_image and training_loss("dice") is dice_loss
    with pytest.raises(ValueError, match="training.loss must be one of"):
        loss_per_image("hinge")


@pytest.mark.parametrize("name", LOSSES)
def test_metrics_in_one_pass_equal_the_separate_metrics_for_every_loss(name):
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 5, 1, 4, 4, generator=gen) * 2  # two points at once
    masks = (torch.rand(5, 1, 4, 4, generator=gen) > 0.5).float()
    got = metrics_per_image(logits, PreparedMasks.of(masks), name)
    for point in range(2):
        expected = loss_per_image(name)(logits[point], masks).double()
        torch.testing.assert_close(got[point, :, 0], expected, rtol=1e-6, atol=1e-7)
        assert torch.equal(got[point, :, 1:], separate_metrics(logits[point], masks)[:, 1:])


# --- the same losses as MONAI's (where MONAI is installed: pip install -e '.[monai]') ----------


def monai_losses():
    return pytest.importorskip("monai.losses", reason="MONAI is not installed (pip install -e '.[monai]')")


def test_default_dice_equals_monai_dice_loss_with_the_same_smoothing():
    losses = monai_losses()
    logits, masks = random_batch(8, shape=(6, 1, 9, 7))
    monai = losses.DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0, reduction="none")(logits, masks)
    torch.testing.assert_close(soft_dice_loss_per_image(logits, masks), monai.reshape(-1), rtol=1e-12, atol=1e-12)
    mean = losses.DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(logits, masks)
    assert dice_loss(logits, masks).item() == pytest.approx(mean.item(), rel=1e-12)


def test_the_other_losses_equal_monai_losses():
    losses = monai_losses()
    logits, masks = random_batch(9, shape=(5, 1, 8, 6))
    per_image = {name: loss_per_image(name)(logits, masks) for name in LOSSES}
    tversky = losses.TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7, smooth_nr=1.0, smooth_dr=1.0, reduction="none")
    torch.testing.assert_close(per_image["tversky"], tversky(logits, masks).reshape(-1))
    focal = losses.FocalLoss(gamma=2.0, alpha=None, use_softmax=False, reduction="none")(logits, masks)
    # MONAI computes the focal loss in float32
    torch.testing.assert_close(per_image["focal"], focal.reshape(5, -1).double().mean(1), rtol=1e-6, atol=1e-7)
    dice_ce = losses.DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(logits, masks)
    assert per_image["dice_bce"].mean().item() == pytest.approx(dice_ce.item(), rel=1e-12)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")(logits, masks)
    torch.testing.assert_close(per_image["bce"], bce.reshape(5, -1).mean(1))
