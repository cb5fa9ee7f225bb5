"""Messages per second of ``ingest.classify`` over the corpus, optionally against Sisimai.

    python benchmarks/parse_corpus.py [--repeat N] [--corpus DIR] [--sisimai]

Every file is read into memory first, then classified once to warm up (imports, compiled regular
expressions) and N more times against the clock, in one process. With ``--sisimai`` the same files
go through Debian's libsisimai-perl (the reference Perl implementation) the same way: read into
memory, one warm-up pass, N timed passes of ``Sisimai->make(\\$text, delivered => 1,
vacation => 1)`` in one perl process; the ratio is ours over theirs (issue 2 asks for >= 1.5).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ingest import classify  # noqa: E402 - the repository must be on the path first

__all__ = ["main", "run_ricochet", "run_sisimai"]

DEFAULT_CORPUS = REPO / "tests" / "data" / "corpus" / "emails"
INSTALL_SISIMAI = "apt-get install -y libsisimai-perl"

# Reads the files named after the repeat count into memory, then times Sisimai on them.
# Prints "<messages> <seconds> <records of one pass>".
SISIMAI_SCRIPT = r"""
use strict; use warnings; use Sisimai; use Time::HiRes qw(time);
my $repeat = shift @ARGV;
my @mails;
for my $path (@ARGV) {
    open(my $fh, '<:raw', $path) or die "$path: $!";
    local $/; push @mails, scalar <$fh>; close $fh;
}
my $records = 0;
for my $mail (@mails) {
    my $found = Sisimai->make(\$mail, 'delivered' => 1, 'vacation' => 1) || [];
    $records += scalar @$found;
}
my $started = time;
for (1 .. $repeat) {
    for my $mail (@mails) { Sisimai->make(\$mail, 'delivered' => 1, 'vacation' => 1); }
}
printf "%d %.6f %d\n", $repeat * scalar(@mails), time - $started, $records;
"""


def corpus_files(corpus: Path) -> list[Path]:
    """Every regular file under ``corpus``, sorted."""
    return sorted(path for path in corpus.rglob("*") if path.is_file())


def run_ricochet(messages: list[bytes], repeat: int) -> tuple[int, float, int]:
    """(messages classified, seconds, records of one pass) for ``repeat`` timed passes."""
    records = sum(len(classify(raw).records) for raw in messages)  # warm-up pass
    started = time.perf_counter()
    for _ in range(repeat):
        for raw in messages:
            classify(raw)
    return repeat * len(messages), time.perf_counter() - started, records


def sisimai_available() -> bool:
    """True when perl and the Sisimai module can be loaded."""
    if shutil.which("perl") is None:
        return False
    probe = subprocess.run(["perl", "-MSisimai", "-e", "1"], capture_output=True, check=False)
    return probe.returncode == 0


def run_sisimai(files: list[Path], repeat: int) -> tuple[int, float, int]:
    """The same measurement as run_ricochet, in one perl process running Sisimai."""
    result = subprocess.run(["perl", "-e", SISIMAI_SCRIPT, str(repeat), *map(str, files)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"perl exited with {result.returncode}: {result.stderr.strip()[-2000:]}")
    count, seconds, records = result.stdout.split()
    return int(count), float(seconds), int(records)


def report(name: str, count: int, seconds: float, records: int) -> float:
    rate = count / seconds if seconds else float("inf")
    print(f"{name:9} {count:6d} messages in {seconds:7.3f} s: {rate:8.1f} messages/second "
          f"({records} records per pass)")
    return rate


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of raw messages")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the corpus (default 5)")
    parser.add_argument("--sisimai", action="store_true", help="also time Sisimai (libsisimai-perl)")
    args = parser.parse_args(argv)
    files = corpus_files(args.corpus)
    if not files:
        print(f"{args.corpus}: no files to parse", file=sys.stderr)
        return 2
    if args.sisimai and not sisimai_available():
        print(f"Sisimai is not installed; install it with: {INSTALL_SISIMAI}", file=sys.stderr)
        return 2
    messages = [path.read_bytes() for path in files]
    print(f"corpus: {len(files)} files, {sum(map(len, messages)) / 1e6:.1f} MB, {args.repeat} timed passes")
    ours = report("ricochet", *run_ricochet(messages, args.repeat))
    if args.sisimai:
        theirs = report("sisimai", *run_sisimai(files, args.repeat))
        print(f"ratio     ricochet / sisimai = {ours / theirs:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
