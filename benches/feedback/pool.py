"""Feedback experiment helpers (stdlib only).

  pool.py write  MNIST_DIR START END OUT_PREFIX
      MNIST training images START..END-1 (never trained on with --max-train START) as
      OUT_PREFIX-images.idx and their labels as OUT_PREFIX-labels.txt.
  pool.py select POOL_PREFIX SCORES_CSV ANOMALY K OUT_PREFIX
      From `ssvae score` output: the K highest-scoring normal pool samples (false positives)
      and the K lowest-scoring anomalies (false negatives), as OUT_PREFIX-fp.idx / -fn.idx.
"""
import gzip, struct, sys

def read_idx(path):
    op = gzip.open if open(path, 'rb').read(2) == b'\x1f\x8b' else open
    b = op(path, 'rb').read()
    nd = b[3]
    dims = struct.unpack('>' + 'I' * nd, b[4:4 + 4 * nd])
    return dims, b[4 + 4 * nd:]

def write_idx(path, rows, dim):
    with open(path, 'wb') as f:
        f.write(bytes([0, 0, 8, 2]) + struct.pack('>II', len(rows), dim))
        for r in rows:
            f.write(r)

if sys.argv[1] == 'write':
    d, start, end, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    dims, px = read_idx(f'{d}/train-images-idx3-ubyte.gz')
    _, lab = read_idx(f'{d}/train-labels-idx1-ubyte.gz')
    dim = dims[1] * dims[2]
    write_idx(f'{out}-images.idx', [px[i * dim:(i + 1) * dim] for i in range(start, end)], dim)
    open(f'{out}-labels.txt', 'w').write(''.join(f'{lab[i]}\n' for i in range(start, end)))
else:
    pool, scores, anomaly, k, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    dims, px = read_idx(f'{pool}-images.idx')
    dim = dims[1]
    labels = [int(l) for l in open(f'{pool}-labels.txt')]
    s = [float(l.split(',')[1]) for l in open(scores).read().splitlines()[1:]]
    normal = sorted((i for i in range(len(s)) if labels[i] != anomaly), key=lambda i: -s[i])[:k]
    anom = sorted((i for i in range(len(s)) if labels[i] == anomaly), key=lambda i: s[i])[:k]
    for name, idx in (('fp', normal), ('fn', anom)):
        write_idx(f'{out}-{name}.idx', [px[i * dim:(i + 1) * dim] for i in idx], dim)
        print(name, len(idx), 'pool indices', idx[:10], '...', 'score range', min(s[i] for i in idx), max(s[i] for i in idx))
