"""The networks and their losses: the built-in U-Net (its initialisation and checkpoints) and the
Dice loss with the hard Dice and IoU metrics.

May import the basics (atomic, device, seeding) only."""
