"""The soak's summary: faults, publishers, each client per fault window, totals; the verdict last."""

from collections import Counter

from benchmarks.soak.checker import FIGURES, failures

HEAD = f"{'received':>9} {'counted':>8} {'undeliv':>7} {'silent':>7} {'dup':>5} {'reord':>6}"


def _figures(c):
    return (f"{c['received']:>9} {c['counted']:>8} {c['undelivered']:>7} {c['silent']:>7} "
            f"{c['duplicated']:>5} {c['reordered']:>6}")


class Report:
    """Everything a soak run found; ``text()`` is what it prints, ``failures`` what makes it fail."""

    def __init__(self, settings, windows, outcomes, results, publications, notes=()):
        self.settings = settings
        self.windows = windows
        self.outcomes = outcomes  # window index → outcome text (index 0: the baseline)
        self.results = results
        self.publications = publications
        self.notes = list(notes)
        self.failures = failures(results)
        self.faults = len(windows) - 1
        for pub, (ok, refused) in self.by_publisher().items():
            if ok < sum(refused.values()):  # a run that refuses most of a publisher's traffic proves nothing
                self.notes.append(f"publisher {pub}: only {ok} of {ok + sum(refused.values())} accepted")

    def by_publisher(self):
        by_pub = {}
        for p in self.publications:
            entry = by_pub.setdefault(p.pub, [0, Counter()])
            if p.accepted:
                entry[0] += 1
            else:
                entry[1][p.reason] += 1
        return by_pub

    @property
    def passed(self):
        return not self.failures and not self.notes

    def totals(self):
        total = Counter()
        for r in self.results:
            total.update(r.total)
        return total

    def refused_by_window(self):
        out = Counter()
        for p in self.publications:
            if not p.accepted:
                out[self.windows.index(p.t)] += 1
        return out

    def text(self):
        s = self.settings
        lines = [f"soak: seed {s['seed']}, {s['seconds']:g} s, a fault every {s['interval'][0]:g}-{s['interval'][1]:g} s, "
                 f"queue {s['queue_size']}, logs in {s['workdir']}",
                 "", "fault windows (a payload belongs to the last fault begun by 1 s after it was published):"]
        for i in range(len(self.windows)):
            start, label = self.windows.windows[i]
            lines.append(f"  w{i:<3} {start - self.windows.windows[0][0]:>6.1f} s  {label:<18} {self.outcomes.get(i, '')}")
        lines += ["", "publishers:", f"  {'pub':<8} {'accepted':>9} {'refused':>8}  reasons refused"]
        for pub, (ok, refused) in self.by_publisher().items():
            reasons = ", ".join(f"{k} {v}" for k, v in refused.most_common())
            lines.append(f"  {pub:<8} {ok:>9} {sum(refused.values()):>8}  {reasons}")
        lines += ["", "per client and fault window:", f"  {'client':<10} {'window':<24} {HEAD}"]
        for r in self.results:
            for i in range(len(self.windows)):
                lines.append(f"  {r.name:<10} {f'w{i} ' + self.windows.label(i):<24} {_figures(r.windows.get(i, Counter()))}")
        lines += ["", "per client (gaps: seqs never received; told: dropped figures and notices; over: told "
                      "of losses that did not happen; unjust: counted with no queue bound exceeded; stall: longest "
                      "wait of a due message while nothing arrived):",
                  f"  {'client':<10} {'transport':<10} {HEAD} {'gaps':>5} {'told':>5} {'over':>5} {'unjust':>6}"
                  f" {'stall':>6}  sessions, breaks"]
        for r in self.results:
            events = ", ".join(f"{k[6:]} {v}" for k, v in sorted(r.info.items()) if k.startswith("event:"))
            extra = ", ".join(f"{k} {r.info[k]}" for k in ("redelivered", "seq_conflicts", "unexpected",
                                                            "refused_but_received") if r.info.get(k))
            lost = "; ".join(f"lost from {pub}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                             for pub, c in sorted(r.by_pub.items()))
            extra = "; ".join(x for x in (extra, lost) if x)
            lines.append(f"  {r.name:<10} {r.transport:<10} {_figures(r.total)} {r.info['gaps']:>5} "
                         f"{r.info['told']:>5} {r.info['overtold']:>5} {r.total['unjustified']:>6} "
                         f"{r.info.get('stall', 0):>5.1f}s  "
                         f"{r.info['sessions']} session(s)"
                         + (f"; {events}" if events else "") + (f"; {extra}" if extra else ""))
        refused = self.refused_by_window()
        lines += ["", "per fault window, all clients:", f"  {'window':<24} {HEAD} {'refused':>8}"]
        for i in range(len(self.windows)):
            c = Counter()
            for r in self.results:
                c.update(r.windows.get(i, Counter()))
            lines.append(f"  {f'w{i} ' + self.windows.label(i):<24} {_figures(c)} {refused[i]:>8}")
        for note in self.notes:
            lines.append(f"NOTE: {note}")
        t = self.totals()
        lost = t["counted"] + t["undelivered"] + t["silent"]
        overtold = sum(r.info["overtold"] for r in self.results)
        lines += ["",
                  f"TOTAL: {self.faults} fault{'' if self.faults == 1 else 's'}; received {t['received']}; lost {lost} (counted {t['counted']}, "
                  f"of them unjustified {t['unjustified']}; undelivered {t['undelivered']}; silent {t['silent']}); "
                  f"seq gaps never told {t['untold']}; "
                  f"duplicated {t['duplicated']}; reordered {t['reordered']}; refused {sum(refused.values())} "
                  f"(not lost: the publisher knew); told of losses that did not happen {overtold}; "
                  f"clients stalled over {self.settings['max_stall']:g} s {t['stalled']}"]
        if self.passed:
            lines.append("RESULT: PASS (silent = untold = undelivered = duplicated = reordered = stalled = 0; "
                         "counted losses only past a queue bound)")
        else:
            bad = ", ".join(f"{k} {v}" for k, v in self.failures.items())
            lines.append(f"RESULT: FAIL ({bad}{'; ' if bad and self.notes else ''}{'; '.join(self.notes)})")
        return "\n".join(lines)


__all__ = ["Report", "FIGURES"]
