"""Captures as Dask DataFrames: one partition per capture, through the columnar scan.

    >>> import dask
    >>> from scapy_geneve.capture.dask_frame import read_captures
    >>> frame = read_captures("pcaps/*.pcap", columns=["kind", "vni", "wirelen"])
    >>> frame.npartitions
    16
    >>> per_vni = frame.groupby(["kind", "vni"], observed=True).wirelen.sum().compute()

Each partition is one capture file read by :func:`~scapy_geneve.capture.columnar.scan_table`
where the Dask worker runs (a file is one unit: STT context IDs and pcapng
sections flow from packet to packet, so a file is not split).  The workers
need scapy-geneve installed and the files at the same paths (a shared file
system, or object storage mounted on every worker).  :func:`read_options` gives
one row per Geneve option, for per-option counts.

Needs ``pip install 'scapy-geneve[analytics]'`` (dask[distributed], pandas, pyarrow).
"""

from typing import Any, Iterable, List, Optional, Sequence, Union

from scapy_geneve.capture.columnar import KIND_NAMES, require_pyarrow, scan_table, schema
from scapy_geneve.capture.parallel import expand_inputs
from scapy_geneve.registry import DEFAULT_PORTS, Ports

__all__ = ["read_captures", "read_options", "OPTION_COLUMNS"]

#: The columns of :func:`read_options`: the packet's, then the option's.
OPTION_COLUMNS = (
    "file",
    "number",
    "kind",
    "vni",
    "wirelen",
    "index",
    "class",
    "type",
    "critical",
    "length",
    "data",
)


def _dask() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError:
        raise ImportError(
            "Dask frames need dask: pip install 'scapy-geneve[analytics]' "
            "(pyarrow, duckdb, dask[distributed], pandas)"
        ) from None
    return dd


def _paths(captures: Union[str, Sequence[str]]) -> List[str]:
    patterns = [captures] if isinstance(captures, str) else list(captures)
    paths = expand_inputs(patterns)
    if "-" in paths:
        raise ValueError("a Dask frame reads files, not standard input")
    return paths


def _pandas(table: Any) -> Any:
    """A pandas frame with the same dtypes in every partition: Arrow-backed columns
    (64-bit identifiers stay exact, option data stays bytes), ``kind`` a category."""
    import pandas

    kinds = pandas.CategoricalDtype(list(KIND_NAMES))
    frame = table.to_pandas(types_mapper=pandas.ArrowDtype)
    if "kind" in frame.columns:
        frame["kind"] = table.column("kind").to_pandas().astype(kinds).values
    return frame


class _Packets:
    """(picklable) One partition: the packets of one capture."""

    def __init__(self, columns: Optional[List[str]], ports: Ports, l2tp_cookie: int, l2tp_l2ss: bool) -> None:
        self.columns, self.ports = columns, ports
        self.l2tp_cookie, self.l2tp_l2ss = l2tp_cookie, l2tp_l2ss

    def table(self, path: str, columns: Optional[Iterable[str]]) -> Any:
        return scan_table(
            path, columns, ports=self.ports, l2tp_cookie=self.l2tp_cookie, l2tp_l2ss=self.l2tp_l2ss
        )

    def __call__(self, path: str) -> Any:
        return _pandas(self.table(path, self.columns))


class _Options(_Packets):
    """(picklable) One partition: the Geneve options of one capture, one row each."""

    def __call__(self, path: str) -> Any:
        return _pandas(
            option_table(self.table(path, ["file", "number", "kind", "vni", "wirelen", "options"]))
        )


def option_table(table: Any) -> Any:
    """One row per Geneve option of TABLE (which has ``options`` and the packet columns
    of :data:`OPTION_COLUMNS`): the packet's columns repeated, the option's flattened."""
    pa = require_pyarrow()
    import pyarrow.compute as pc

    options = table.column("options").combine_chunks()
    owner = pc.list_parent_indices(options)
    items = options.flatten()
    starts = pc.take(options.offsets, owner)
    index = pc.subtract(pa.array(range(len(items)), pa.int32()), starts)
    columns = [table.column(name).take(owner) for name in ("file", "number", "kind", "vni", "wirelen")]
    columns.append(index.cast(pa.uint8()))
    columns += [items.field(name) for name in ("class", "type", "critical", "length", "data")]
    return pa.Table.from_arrays(columns, names=list(OPTION_COLUMNS))


def read_captures(
    captures: Union[str, Sequence[str]],
    columns: Optional[Iterable[str]] = None,
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
) -> Any:
    """A :class:`dask.dataframe.DataFrame` of every packet of CAPTURES (paths or globs),
    one partition per file, the columns of the columnar scan (``columns`` selects)."""
    dd = _dask()
    chosen = None if columns is None else list(columns)
    meta = _pandas(schema(chosen).empty_table())
    return dd.from_map(
        _Packets(chosen, ports, l2tp_cookie, l2tp_l2ss), _paths(captures), meta=meta, enforce_metadata=False
    )


def read_options(
    captures: Union[str, Sequence[str]],
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
) -> Any:
    """A Dask DataFrame with one row per Geneve option (:data:`OPTION_COLUMNS`)."""
    dd = _dask()
    empty = schema(["file", "number", "kind", "vni", "wirelen", "options"]).empty_table()
    meta = _pandas(option_table(empty))
    return dd.from_map(
        _Options(None, ports, l2tp_cookie, l2tp_l2ss), _paths(captures), meta=meta, enforce_metadata=False
    )
