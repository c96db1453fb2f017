"""The point of condensation: on digits, at a reduced CPU budget and over 3 seeds, DM and
DANCE sets at IPC 1 and 10 train networks better than random real subsets of the same size,
all evaluated with one protocol."""
import pytest

from dance_ext.compare import compare, markdown_table

SEEDS = (0, 1, 2)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def table(tmp_path_factory, single_thread):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DANCE_EXT_CACHE", str(tmp_path_factory.mktemp("cache")))  # not the user's cache
        rows = compare("digits", "digits", methods=("random", "dm", "dance"), ipcs=(1, 10), seeds=SEEDS,
                       preset="quick", protocol="dance", eval_epochs=100, eval_runs=1, eval_width=32,
                       progress=False, iterations=200)
    print("\n" + markdown_table(rows))
    return {(r["method"], r["ipc"]): r for r in rows}


@pytest.mark.parametrize("ipc", [1, 10])
@pytest.mark.parametrize("method", ["dm", "dance"])
def test_condensed_beats_random_subset(table, method, ipc):
    ours, random = table[(method, ipc)], table[("random", ipc)]
    assert len(ours["accuracies"]) == len(SEEDS) == len(random["accuracies"])
    assert ours["mean"] > random["mean"], markdown_table(list(table.values()))
