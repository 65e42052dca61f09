"""Lightning's own demo transformer (``lightning.pytorch.demos.transformer.LightningTransformer``) scored by the
callback with every proxy: token-id inputs, a ``forward(inputs, target)``, log-probability outputs and a functional
ReLU. Synthetic tokens stand in for WikiText-2 (no download). Prints each value and its status.

    python examples/lightning_transformer.py
"""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.demos.transformer import LightningTransformer
from torch.utils.data import DataLoader, TensorDataset

from lswag_lightning import ZeroCostProxyCallback, available_proxies


class Demo(LightningTransformer):  # Lightning's demo, on synthetic tokens (no download)
    def prepare_data(self):
        pass

    def train_dataloader(self):
        stream = torch.randint(0, 64, (48 * 9 + 1,), generator=torch.Generator().manual_seed(3))
        return DataLoader(TensorDataset(stream[:-1].reshape(48, 9), stream[1:].reshape(48, 9)), batch_size=8)


relu_inputs = [f"model.transformer.{side}.layers.{i}.linear1" for side in ("encoder", "decoder") for i in (0, 1)]
encoder_blocks = [f"model.transformer.encoder.layers.{i}" for i in (0, 1)]
# Every proxy except VKDNW, for time: 64 outputs take 63 backward passes plus forward-mode products (about 50 s).
zc = ZeroCostProxyCallback(
    proxies=[p for p in available_proxies() if p not in ("vkdnw", "vkdnw_single")],
    batch_size=16,
    forward_fn=lambda module, tokens, target: module(tokens, target),  # forward(inputs, target)
    loss_fn=lambda log_probs, target: F.nll_loss(log_probs, target.reshape(-1)),  # the demo's own loss
    score_options={
        "activation_points": relu_inputs,  # its ReLU is F.relu
        "block_points": encoder_blocks,
    },
)  # AZ-NAS's chain of blocks
pl.seed_everything(0)
pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[zc]).fit(
    Demo(vocab_size=64)
)
for name, status in zc.report.status.items():
    print(f"{name:13s} {zc.report.values[name]:12.5g}  {status[:100]}")
