"""Writes assets/fashion_mnist: the first 200 garments of every Fashion-MNIST class
from its training set and the first 60 of every class from its test set, in the
dataset's order, as uncompressed IDX files. Reads Debian's dataset-fashion-mnist.

  python3 scripts/fashion_mnist_subset.py [/usr/share/datasets/fashion-mnist] [assets/fashion_mnist]
"""
import gzip, struct, sys

src = sys.argv[1] if len(sys.argv) > 1 else '/usr/share/datasets/fashion-mnist'
out = sys.argv[2] if len(sys.argv) > 2 else 'assets/fashion_mnist'
SIDE = 28


def subset(images_gz, labels_gz, per_class):
    images = gzip.open(f'{src}/{images_gz}').read()
    labels = gzip.open(f'{src}/{labels_gz}').read()
    assert struct.unpack('>I', images[:4])[0] == 2051 and struct.unpack('>I', labels[:4])[0] == 2049
    taken = {c: 0 for c in range(10)}
    keep = []
    for i, label in enumerate(labels[8:]):
        if taken[label] < per_class:
            taken[label] += 1
            keep.append(i)
    assert all(n == per_class for n in taken.values()), taken
    pixels = b''.join(images[16 + i * SIDE * SIDE:16 + (i + 1) * SIDE * SIDE] for i in keep)
    kept_labels = bytes(labels[8 + i] for i in keep)
    n = len(keep)
    return (struct.pack('>IIII', 2051, n, SIDE, SIDE) + pixels, struct.pack('>II', 2049, n) + kept_labels)


for split, stem, per_class in [('train', 'train', 200), ('val', 't10k', 60)]:
    images, labels = subset(f'{stem}-images-idx3-ubyte.gz', f'{stem}-labels-idx1-ubyte.gz', per_class)
    open(f'{out}/{split}-images.idx', 'wb').write(images)
    open(f'{out}/{split}-labels.idx', 'wb').write(labels)
