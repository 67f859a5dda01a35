# Sourced by scripts/setup.sh and scripts/windows.sh: the hash of everything
# a build of the extension depends on (build products in python/ excluded),
# so each rebuilds its wheel only when one of these changed.
source_hash() {
    {
        find src python -type f \
            ! -name '*.so' ! -name '*.pyd' ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 2>/dev/null
        for f in Cargo.toml Cargo.lock pyproject.toml; do
            [ -f "$f" ] && printf '%s\0' "$f"
        done
    } | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}
