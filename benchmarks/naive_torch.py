"""(b) The naive recipe in PyTorch (CPU): same data, model, Adam, batch 64, 5 epochs, 80/20 split.

Prints one JSON line like naive_keras.py. Needs the bench extra: pip install -e ".[bench]".
"""

import json
import time

import torch
from common import mnist_arrays
from torch import nn

torch.manual_seed(0)
x_train, y_train, x_test, y_test = mnist_arrays()
to_tensor = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # noqa: E731 - NHWC to NCHW
x, y = to_tensor(x_train), torch.from_numpy(y_train.argmax(1))
n_val = len(x) // 5
x_fit, y_fit, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
x_test, y_test = to_tensor(x_test), torch.from_numpy(y_test.argmax(1))

model = nn.Sequential(
    nn.Conv2d(1, 32, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(576, 64),
    nn.ReLU(),
    nn.Linear(64, 10),
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()


def accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(images[i : i + 1000]).argmax(1) == labels[i : i + 1000]).sum().item()
            for i in range(0, len(images), 1000)
        )
    return correct / len(images)


epoch_s, train_s = [], []
for _ in range(5):
    start = time.perf_counter()
    model.train()
    for batch in torch.randperm(len(x_fit)).split(64):
        optimizer.zero_grad()
        loss_fn(model(x_fit[batch]), y_fit[batch]).backward()
        optimizer.step()
    train_s.append(time.perf_counter() - start)
    accuracy(x_val, y_val)
    epoch_s.append(time.perf_counter() - start)
print(
    json.dumps(
        {
            "epoch_s": epoch_s,
            "train_s": train_s,
            "train_samples": len(x_fit),
            "test_accuracy": accuracy(x_test, y_test),
            "params": sum(p.numel() for p in model.parameters()),
        }
    )
)
