"""Floating-point operations of a training step, counted from the spec's layers.

Only matrix products and convolutions are counted, each kind stating its own
(``Layer.flops`` in gx.layers): two operations per multiply-add, as PyTorch's FlopCounterMode
counts them. They are nearly all of a GAN step's arithmetic; batch norm, activations and losses
are elementwise and cheap. The count is the work the step needs, the same for every backend:

- a forward pass: every counted layer once;
- a backward pass: the weight gradients of the network being updated, and the input gradients
  of every layer whose input depends on something being differentiated (D's input gradients in
  G's update carry G's gradient through D; no layer needs the gradient of the data or labels).
"""

from __future__ import annotations

from dataclasses import dataclass

from gx.spec.graph import LayerInfo, ModelSpec


def layer_flops(info: LayerInfo) -> int:
    """Forward FLOPs of one sample through ``info`` (0 for a layer that is not counted)."""
    return info.layer.flops(info)


def pass_flops(spec: ModelSpec, batch: int, update_weights: bool, input_gradient: bool) -> int:
    """FLOPs of a forward and backward pass over ``batch`` samples.

    ``update_weights``: the pass trains this network's weights; ``input_gradient``: its image
    input carries a gradient to an earlier network (D in G's update).
    """
    carries = {name for name in spec.inputs if input_gradient and name == "image"}
    total = 0
    for info in spec.infos:
        forward = layer_flops(info)
        inputs_carry = any(source in carries for source in info.inputs)
        total += forward
        total += forward if update_weights and info.parameters else 0
        total += forward if inputs_carry else 0
        if inputs_carry or (update_weights and info.parameters):
            carries.add(info.name)
    return batch * total


def forward_flops(spec: ModelSpec, batch: int) -> int:
    return batch * sum(layer_flops(info) for info in spec.infos)


@dataclass(frozen=True)
class StepFlops:
    generator_update: int  # G's forward and backward, and D's as G's loss needs it
    discriminator_update: int  # D on real images and on fakes, and making the fakes
    d_steps: int

    @property
    def per_step(self) -> float:
        """Average FLOPs of a step: D trains every step, G every ``d_steps``-th."""
        return self.discriminator_update + self.generator_update / self.d_steps


def step_flops(
    generator: ModelSpec, discriminator: ModelSpec, batch: int, order: str, d_steps: int
) -> StepFlops:
    """FLOPs of a GanTrainer step (gx.train.gan) in either step order."""
    d_on_both = 2 * pass_flops(discriminator, batch, update_weights=True, input_gradient=False)
    g_update = pass_flops(generator, batch, update_weights=True, input_gradient=False)
    g_update += pass_flops(discriminator, batch, update_weights=False, input_gradient=True)
    if order == "d_then_g":
        # the D update draws its fakes without gradients; G's update draws fresh ones
        return StepFlops(g_update, d_on_both + forward_flops(generator, batch), d_steps)
    # g_then_d: D trains on the fakes G's update drew (detached), on steps without a G update
    # G still draws them, forward only
    skipped_g = forward_flops(generator, batch)
    return StepFlops(g_update - skipped_g, d_on_both + skipped_g, d_steps)
