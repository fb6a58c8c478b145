"""Digit classification, written the way everyday PyTorch training scripts are: a
Dataset with a transform, DataLoaders, argparse flags, train()/evaluate() functions,
two models (a conv net with Dropout trained by Adadelta + StepLR on log_softmax/NLL,
and an nn.Sequential with a Lambda layer and adaptive pooling trained by SGD on
cross_entropy), per-class accuracy, and a state_dict checkpoint reloaded into a fresh
model. Data: an .npz with uint8 ``images`` (N, 28, 28) and int64 ``labels``."""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FRAMEWORK, seeded_init  # noqa: E402

if FRAMEWORK == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.optim.lr_scheduler import StepLR
    from torch.utils.data import DataLoader, Dataset
else:
    import gradflow as torch
    import gradflow.nn as nn
    import gradflow.nn.functional as F
    from gradflow.optim.lr_scheduler import StepLR
    from gradflow.utils.data import DataLoader, Dataset


class Digits(Dataset):
    def __init__(self, images, labels, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = self.images[i]
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])


def to_tensor(img, mean=0.13, std=0.31):
    return (torch.from_numpy(img.astype(np.float32) / 255.0).unsqueeze(0) - mean) / std


class ConvNet(nn.Module):
    def __init__(self, dropout=0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(16 * 12 * 12, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(torch.flatten(x, 1))
        x = self.dropout(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def pooled_net():
    return nn.Sequential(
        Lambda(lambda x: x.view(-1, 1, 28, 28)),
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 10, 3, stride=1, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        Lambda(lambda x: x.view(x.size(0), -1)),
    )


def train(model, loader, optimizer, epoch, loss_fn, log_interval):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(loader):
        optimizer.zero_grad()
        loss = loss_fn(model(data), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(loader.dataset)}]"
                  f"\tLoss: {loss.item():.6f}")
    return losses


def evaluate(model, loader, loss_fn):
    model.eval()
    total_loss, correct = 0.0, 0
    per_class = {c: [0, 0] for c in range(10)}
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            total_loss += loss_fn(output, target, reduction="sum").item()
            _, pred = torch.max(output, 1)
            correct += (pred == target).sum().item()
            for t, p in zip(target.tolist(), pred.tolist()):
                per_class[t][0] += int(t == p)
                per_class[t][1] += 1
    n = len(loader.dataset)
    print(f"Test set: Average loss: {total_loss / n:.4f}, Accuracy: {correct}/{n} "
          f"({100.0 * correct / n:.0f}%)")
    return total_loss / n, correct / n, per_class


def main(argv=None):
    parser = argparse.ArgumentParser(description="digit classifier")
    parser.add_argument("--data", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--save-model", default="")
    args = parser.parse_args(argv)

    arrays = np.load(args.data)
    images, labels = arrays["images"], arrays["labels"]
    n_train = int(0.8 * len(labels))
    train_set = Digits(images[:n_train], labels[:n_train], transform=to_tensor)
    test_set = Digits(images[n_train:], labels[n_train:], transform=to_tensor)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=False)
    test_loader = DataLoader(test_set, batch_size=100)

    torch.manual_seed(1)
    model = seeded_init(ConvNet(args.dropout), torch, seed=1)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    history = []
    for epoch in range(1, args.epochs + 1):
        losses = train(model, train_loader, optimizer, epoch, F.nll_loss, args.log_interval)
        history.append((losses, evaluate(model, test_loader, F.nll_loss)))
        scheduler.step()

    pooled = seeded_init(pooled_net(), torch, seed=2)
    opt2 = torch.optim.SGD(pooled.parameters(), lr=0.05, momentum=0.9)
    flat_train = DataLoader(Digits(images[:n_train], labels[:n_train],
                                   transform=lambda im: to_tensor(im).view(-1)),
                            batch_size=args.batch_size)
    flat_test = DataLoader(Digits(images[n_train:], labels[n_train:],
                                  transform=lambda im: to_tensor(im).view(-1)), batch_size=100)
    pooled_losses = train(pooled, flat_train, opt2, 1, F.cross_entropy, args.log_interval)
    pooled_eval = evaluate(pooled, flat_test, F.cross_entropy)

    reloaded = None
    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
        reloaded = ConvNet(args.dropout)
        reloaded.load_state_dict(torch.load(args.save_model))
        reloaded.eval()
    return {"history": history, "pooled": (pooled_losses, pooled_eval), "model": model,
            "reloaded": reloaded, "test_set": test_set}


if __name__ == "__main__":
    RESULTS = main()
