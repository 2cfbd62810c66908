#!/bin/sh
# The training recipe's own unit tests (models/train/tests: dataset readers, importers, the
# exporter's metadata and its round trip through the model container), run with Debian's Python.
# Skips (77) when /usr/bin/python3 lacks torch, torchvision or numpy.
# GPL-3.0-or-later.
py=/usr/bin/python3
top=${srcdir:-$(dirname "$0")/..}
[ -x "$py" ] || { echo "SKIP: $py not found"; exit 77; }
if ! "$py" -c 'import numpy, torch, torchvision' 2>/dev/null; then
    echo "SKIP: $py cannot import numpy, torch and torchvision (Debian python3-torch, python3-torchvision)"
    exit 77
fi
cd "$top" || exit 1
exec "$py" -m unittest discover -s models/train/tests -v
