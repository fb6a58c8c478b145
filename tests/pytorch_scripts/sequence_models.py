"""Three sequence programs in everyday PyTorch style:

1. a hand-built recurrent cell (nn.Linear on [input, hidden], LogSoftmax, NLLLoss)
   classifying made-up words by their letters, one-hot encoded one letter at a time and
   trained with manual SGD through ``p.data.add_(p.grad, alpha=-lr)``, with a confusion
   matrix filled by ``confusion[i][j] += 1``;
2. an LSTM fitted to noisy sine waves by closure-based L-BFGS, then predicting the
   future by feeding its outputs back in;
3. a word-level language model (LSTM or TransformerEncoder) on a small made-up corpus,
   batchified with ``narrow``, trained by truncated backprop (``get_batch`` slices,
   hidden state detached between batches, ``clip_grad_norm_``), saved and reloaded
   whole (``torch.save(model, f)``).
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FRAMEWORK, seeded_init  # noqa: E402

if FRAMEWORK == "torch":
    import torch
    import torch.nn as nn
    import torch.optim as optim
else:
    import gradflow as torch
    import gradflow.nn as nn
    import gradflow.optim as optim

RESULTS = {}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


# -- 1. words by their letters ------------------------------------------------------------------
def make_words(rng, n=30):
    styles = {"vowelly": "aeiou" * 3 + "lmnr", "consonanty": "kstvzrgbd" * 2 + "a",
              "doubled": "ab"}
    words = {}
    for name, alphabet in styles.items():
        out = []
        for _ in range(n):
            k = rng.integers(3, 7)
            w = "".join(rng.choice(list(alphabet), size=k))
            out.append(w + w[-1] if name == "doubled" else w)
        words[name] = out
    return words


def word_to_tensor(word):
    t = torch.zeros(len(word), 1, len(LETTERS))
    for i, ch in enumerate(word):
        t[i][0][LETTERS.index(ch)] = 1
    return t


class TinyRNN(nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.hidden_size = n_hidden
        self.i2h = nn.Linear(n_in + n_hidden, n_hidden)
        self.i2o = nn.Linear(n_in + n_hidden, n_out)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, x, hidden):
        combined = torch.cat((x, hidden), 1)
        return self.softmax(self.i2o(combined)), torch.tanh(self.i2h(combined))

    def init_hidden(self):
        return torch.zeros(1, self.hidden_size)


def classify_words(steps=300, lr=0.05):
    rng = np.random.default_rng(0)
    words = make_words(rng)
    categories = sorted(words)
    rnn = seeded_init(TinyRNN(len(LETTERS), 32, len(categories)), torch, seed=3)
    criterion = nn.NLLLoss()

    def run(word):
        hidden = rnn.init_hidden()
        line = word_to_tensor(word)
        for i in range(line.size(0)):
            output, hidden = rnn(line[i], hidden)
        return output

    losses = []
    for step in range(steps):
        cat = categories[step % len(categories)]
        word = words[cat][(step // len(categories)) % len(words[cat])]
        target = torch.tensor([categories.index(cat)], dtype=torch.long)
        rnn.zero_grad()
        loss = criterion(run(word), target)
        loss.backward()
        for p in rnn.parameters():
            p.data.add_(p.grad.data, alpha=-lr)
        losses.append(loss.item())

    confusion = torch.zeros(len(categories), len(categories))
    with torch.no_grad():
        for i, cat in enumerate(categories):
            for word in words[cat]:
                _, top = run(word).topk(1)
                confusion[i][top[0].item()] += 1
    confusion = confusion / confusion.sum(1, keepdim=True)
    RESULTS["words"] = {"losses": losses, "confusion": confusion.numpy().tolist()}
    print(f"word classifier: mean loss first 30 {np.mean(losses[:30]):.3f}, "
          f"last 30 {np.mean(losses[-30:]):.3f}, accuracy per class "
          f"{[round(v, 2) for v in confusion.diagonal().tolist()]}")


# -- 2. L-BFGS on an LSTM (sine waves) ------------------------------------------------------------
class Forecaster(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x, future=0):
        out, state = self.lstm(x)
        preds = [self.head(out)]
        last = preds[0][:, -1:]
        for _ in range(future):  # feed each prediction back in
            out, state = self.lstm(last, state)
            last = self.head(out)
            preds.append(last)
        return torch.cat(preds, 1)


def fit_sines(steps=3):
    rng = np.random.default_rng(2)
    t = np.arange(60) * 0.2
    waves = np.sin(t[None, :] + rng.uniform(0, 2 * math.pi, (6, 1))).astype(np.float32)
    x = torch.from_numpy(waves[:4, :-1, None])
    y = torch.from_numpy(waves[:4, 1:, None])
    test_x = torch.from_numpy(waves[4:, :-1, None])
    test_y = torch.from_numpy(waves[4:, 1:, None])
    model = seeded_init(Forecaster(), torch, seed=4)
    criterion = nn.MSELoss()
    optimizer = optim.LBFGS(model.parameters(), lr=0.5, max_iter=10, history_size=10,
                            line_search_fn="strong_wolfe")
    losses = []
    for step in range(steps):
        def closure():
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            return loss
        losses.append(optimizer.step(closure).item())
        with torch.no_grad():
            pred = model(test_x, future=10)
            test_loss = criterion(pred[:, :-10], test_y).item()
        print(f"lbfgs step {step}: train loss {losses[-1]:.5f}, test loss {test_loss:.5f}")
    RESULTS["lbfgs"] = {"losses": losses, "test_loss": test_loss,
                        "future": pred[:, -10:].detach().numpy().tolist()}


# -- 3. word-level language model -----------------------------------------------------------------
def corpus(rng, n_sentences=60):
    subjects, verbs, objects = ["the cat", "a dog", "my friend", "the bird"], \
        ["sees", "likes", "chases", "finds"], ["the ball", "a tree", "the house", "some food"]
    text = []
    for _ in range(n_sentences):
        text += (f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}".split()
                 + ["<eos>"])
    vocab = sorted(set(text))
    return torch.tensor([vocab.index(w) for w in text], dtype=torch.long), vocab


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)  # drop the remainder
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=64):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1).float()
        div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div)
        pe[:, 0, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[:x.size(0)]


class WordLM(nn.Module):
    def __init__(self, kind, ntoken, ninp=16, nhid=32, nlayers=2):
        super().__init__()
        self.kind = kind
        self.encoder = nn.Embedding(ntoken, ninp)
        if kind == "lstm":
            self.rnn = nn.LSTM(ninp, nhid, nlayers)
            self.decoder = nn.Linear(nhid, ntoken)
        else:
            self.pos = PositionalEncoding(ninp)
            layer = nn.TransformerEncoderLayer(ninp, 2, nhid, dropout=0.0)
            self.rnn = nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
            self.decoder = nn.Linear(ninp, ntoken)
        self.nlayers, self.nhid = nlayers, nhid

    def init_hidden(self, bsz):
        w = next(self.parameters())
        return (w.new_zeros(self.nlayers, bsz, self.nhid), w.new_zeros(self.nlayers, bsz, self.nhid))

    def forward(self, src, hidden=None):
        emb = self.encoder(src)
        if self.kind == "lstm":
            out, hidden = self.rnn(emb, hidden)
        else:
            n = src.size(0)
            mask = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
            out = self.rnn(self.pos(emb * math.sqrt(emb.size(-1))), mask)
        return self.decoder(out).view(-1, self.decoder.out_features), hidden


def repackage(h):
    return tuple(v.detach() for v in h) if isinstance(h, tuple) else h.detach()


def language_model(kind, epochs=2, bptt=6, save_path=None):
    data, vocab = corpus(np.random.default_rng(5))
    n = data.size(0)
    train = batchify(data.narrow(0, 0, int(n * 0.8)), 4)
    val = batchify(data.narrow(0, int(n * 0.8), n - int(n * 0.8)), 2)
    model = seeded_init(WordLM(kind, len(vocab)), torch, seed=6)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0 if kind == "lstm" else 0.3)

    def evaluate(source):
        model.eval()
        total = 0.0
        hidden = model.init_hidden(source.size(1)) if kind == "lstm" else None
        with torch.no_grad():
            for i in range(0, source.size(0) - 1, bptt):
                x, y = get_batch(source, i, bptt)
                out, hidden = model(x, hidden)
                total += len(x) * criterion(out, y).item()
        return total / (len(source) - 1)

    history = []
    for epoch in range(epochs):
        model.train()
        hidden = model.init_hidden(train.size(1)) if kind == "lstm" else None
        for i in range(0, train.size(0) - 1, bptt):
            x, y = get_batch(train, i, bptt)
            if hidden is not None:
                hidden = repackage(hidden)
            optimizer.zero_grad()
            out, hidden = model(x, hidden)
            loss = criterion(out, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
        history.append(evaluate(val))
        print(f"{kind} epoch {epoch}: valid loss {history[-1]:.3f}, "
              f"ppl {math.exp(history[-1]):.2f}")
    reloaded_loss = None
    if save_path:
        torch.save(model, save_path)  # the whole model; our own file, so trusted below
        model = torch.load(save_path, weights_only=False)
        reloaded_loss = evaluate(val)
    RESULTS[f"lm_{kind}"] = {"valid": history, "reloaded": reloaded_loss,
                             "train_shape": tuple(train.shape)}


if __name__ == "__main__":
    which = os.environ.get("SEQUENCE_PARTS", "words,lbfgs,lstm,transformer").split(",")
    save_dir = os.environ.get("SEQUENCE_SAVE_DIR")
    if "words" in which:
        classify_words()
    if "lbfgs" in which:
        fit_sines()
    for kind in ("lstm", "transformer"):
        if kind in which:
            language_model(kind, save_path=save_dir and os.path.join(save_dir, f"lm_{kind}.pt"))
