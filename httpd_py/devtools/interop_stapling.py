"""The stapling interop cases, what each server is pinned to show, and docs/interop-stapling.md.

``tests/interop/stapling/test_apache_interop.py`` runs every case in ``CASES`` under Debian's
apache2 2.4.71 and under httpd-py and asserts, observation by observation, that Apache shows
``Case.apache`` and httpd-py shows ``Case.ours`` (both sides pinned: a changed answer from either
server fails the test, inside an expected difference too).  Where the two differ, ``Case.why``
says why httpd-py differs on purpose.

    python -m httpd_py.devtools.interop_stapling > docs/interop-stapling.md

prints the results page from these pins (``tests/interop/stapling/test_interop_doc.py`` fails
when the file is stale).  To change a pin: run the interop test, read what it saw, update the
case here, regenerate the page.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

# What an observation says: openssl s_client -status ("staple: good", "staple: trylater",
# "no staple", "(other serial)" when the staple names another certificate), curl --cert-status
# on the ECDSA probes ("curl accepted" / "curl refused (91)"), the responder's request count.
G, R, TL, NO = "staple: good", "staple: revoked", "staple: trylater", "no staple"
OK, REF = "curl accepted", "curl refused (91)"


def ec(staple: str, curl: str) -> str:
    return f"{staple}; {curl}"


def saw(n: int) -> str:
    return f"{n} request(s)"


@dataclass(frozen=True)
class Case:
    name: str
    responder: str | None            # openssl front mode, "inproc:<mode>", or None (down)
    apache: tuple[str, ...]          # what Apache 2.4.71 shows, observation by observation
    ours: tuple[str, ...]            # what httpd-py shows
    extra: tuple[str, ...] = ()      # config lines
    probes: tuple[tuple[str, str], ...] = (("a.test", "ec"),)
    then_back: bool = False          # after the probes, the responder comes back
    repeat: int = 1                  # rounds of probes
    timed: bool = False              # record whether the first handshake waited past the timeout
    why: str = ""                    # why httpd-py differs (required when apache != ours)

    def label_list(self) -> list[str]:
        return ([f"{n} {k.upper()}" for n, k in self.probes] * self.repeat
                + (["(then)"] if self.then_back else [])
                + (["responder saw"] if self.responder else []))


CASES = (
    Case("responder up", "normal",
         probes=(("a.test", "rsa"), ("a.test", "ec"), ("b.test", "ec"), ("revoked.test", "ec")),
         apache=(G, ec(G, OK), ec(G, OK), ec(R, REF), saw(4)),
         ours=(G, ec(G, OK), ec(G, OK), ec(R, REF), saw(4))),
    Case("responder down", None, apache=(ec(TL, REF),), ours=(ec(TL, REF),)),
    Case("responder down, ReturnResponderErrors off", None,
         extra=("SSLStaplingReturnResponderErrors off",),
         apache=(ec(TL, REF),), ours=(ec(NO, REF),),
         why="2.4.71 caches its synthesized tryLater as a valid response and staples it even "
             "with errors off (bz 61818 path); httpd-py caches it as an error entry and, errors "
             "off, staples nothing (Apache trunk r1798455)."),
    Case("responder down, FakeTryLater off", None, extra=("SSLStaplingFakeTryLater off",),
         apache=(ec(NO, REF),), ours=(ec(NO, REF),)),
    Case("responder answers HTTP 500, FakeTryLater off (3 rounds)", "http-500",
         extra=("SSLStaplingFakeTryLater off",), repeat=3,
         apache=(ec(NO, REF),) * 3 + (saw(6),), ours=(ec(NO, REF),) * 3 + (saw(1),),
         why="neither staples, but 2.4.71 caches nothing and queries the failing responder again "
             "on every status-requesting handshake; httpd-py caches the failure for "
             "ErrorCacheTimeout and asks once."),
    Case("responder hangs", "hang", apache=(ec(TL, REF), saw(1)), ours=(ec(TL, REF), saw(1))),
    Case("responder drips its answer (10 bytes 0.6 s apart, then the rest)", "drip", timed=True,
         apache=(f"{G}; handshake held > 4 s; {OK}", saw(1)),
         ours=(f"{TL}; handshake held < 4 s; {REF}", saw(1)),
         why="2.4.71's SSLStaplingResponderTimeout bounds each read, so a responder sending a "
             "byte every 0.6 s holds the handshake for the whole drip (12 s measured with a 5 s "
             "timeout and a slower drip); httpd-py's is a total deadline: the fetch stops at 2 s "
             "and FakeTryLater applies."),
    Case("responder answers tryLater", "tryLater", apache=(ec(TL, REF), saw(1)),
         ours=(ec(TL, REF), saw(1))),
    Case("responder answers tryLater, ReturnResponderErrors off", "tryLater",
         extra=("SSLStaplingReturnResponderErrors off",),
         apache=(ec(NO, REF), saw(1)), ours=(ec(NO, REF), saw(1))),
    Case("down, back after ErrorCacheTimeout (1 s)", None, extra=("SSLStaplingErrorCacheTimeout 1",),
         then_back=True,
         apache=(ec(TL, REF), f"later: {ec(TL, REF)}"), ours=(ec(TL, REF), f"later: {ec(G, OK)}"),
         why="2.4.71 keeps stapling its fake tryLater for SSLStaplingStandardCacheTimeout (3600 s) "
             "after the responder is back; httpd-py treats it as an error entry (ErrorCacheTimeout) "
             "and staples the good response once it expires."),
    Case("response for another serial", "inproc:wrong-serial",
         apache=(ec(f"{G} (other serial)", REF), saw(1)), ours=(ec(NO, REF), saw(1)),
         why="Apache staples a response that does not name the certificate (AH01935 is only "
             "fatal with errors off); httpd-py never staples a response whose CertID does not "
             "match."),
    Case("response with a bad signature", "inproc:bad-signature",
         apache=(ec(G, REF), saw(1)), ours=(ec(NO, REF), saw(1)),
         why="Apache never verifies the responder's signature and staples a forged response as "
             "good; httpd-py verifies it (issuer or delegated id-kp-OCSPSigning signer) and "
             "refuses it."),
    Case("expired response", "inproc:expired", apache=(ec(G, REF), saw(1)),
         ours=(ec(NO, REF), saw(1)),
         why="Apache staples an expired response (AH01936 is only fatal with errors off); "
             "httpd-py never staples a response outside its validity window."),
)


def check_cases() -> list[str]:
    """Consistency of the pins: every observation labelled, every difference explained, no
    explanation without a difference."""
    problems = []
    for c in CASES:
        n = len(c.label_list())
        if len(c.apache) != n or len(c.ours) != n:
            problems.append(f"{c.name}: {n} observations expected, pinned {len(c.apache)} "
                            f"(Apache) and {len(c.ours)} (httpd-py)")
        if (c.apache != c.ours) != bool(c.why):
            problems.append(f"{c.name}: 'why' must be given exactly when the servers differ")
    return problems


HEADER = """\
# Stapling interop: what clients see from Apache httpd 2.4.71 and from httpd-py

Generated by `python -m httpd_py.devtools.interop_stapling > docs/interop-stapling.md` from the
pins in `httpd_py/devtools/interop_stapling.py`; `tests/interop/stapling/test_apache_interop.py`
runs every case under Debian's apache2 and under httpd-py and fails when either server shows
anything else than its pinned column (so a row below is what the last run saw, on both sides),
and `tests/interop/stapling/test_interop_doc.py` fails when this page is stale.  How the cases
are run (the responders, the clients, httpd-py in `SSLStaplingRefresh on-demand`): see
[interop.md](interop.md).

An observation: `openssl s_client -status` (a staple or none; its response status or
certificate status; "(other serial)" when it names another certificate) for the vhost and key
type of the row, `curl --cert-status` (verifies the staple) on the ECDSA rows, and how many
requests the responder saw over the case.
"""


def render() -> str:
    rows = ["| case | vhost | Apache 2.4.71 | httpd-py | |", "|---|---|---|---|---|"]
    for c in CASES:
        for label, a, o in zip(c.label_list(), c.apache, c.ours):
            rows.append(f"| {c.name} | {label} | {a} | {o} | {'same' if a == o else '**improved**'} |")
    why = ["| case | why httpd-py differs |", "|---|---|"]
    why += [f"| {c.name} | {c.why} |" for c in CASES if c.why]
    return (HEADER + "\n## Results\n\n" + "\n".join(rows) + "\n\n## Why the improved rows differ\n\n"
            + "\n".join(why) + "\n")


def main() -> int:
    problems = check_cases()
    if problems:
        sys.stderr.write("".join(f"{p}\n" for p in problems))
        return 1
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
