"""The autoscale formula language of the local Batch service (worker/emulators/batch/autoscale).

Pure computation, so no mock is needed: the seed pool's formula runs over a sample history
recorded from a small simulated pool (tasks, two slots, a node that boots), and each
function, operator, sample method and error is checked against what Azure documents
(learn.microsoft.com batch-automatic-scaling, Pool - Evaluate Auto Scale).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from worker.emulators.batch.autoscale import (
    Evaluation,
    FormulaError,
    SampleHistory,
    evaluate,
    parse,
)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
MINUTE = 60.0

# shared/BATCH.md section 6: the seed pool's formula, joined with \r\n as in the pool's JSON.
SEED_FORMULA = "\r\n".join([
    "samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);",
    "cappedPoolSize = 1;",
    "AvgActiveTask = samples< 70 ? max(0,$ActiveTasks.GetSample(1)) : "
    "avg($ActiveTasks.GetSample(1 * TimeInterval_Minute, 2 * TimeInterval_Minute));",
    "AvgRunningTask = samples< 70 ? max(0,$RunningTasks.GetSample(1)) : "
    "avg($RunningTasks.GetSample(1 * TimeInterval_Minute, 10 * TimeInterval_Minute));",
    "$TargetDedicatedNodes = 0;",
    "ActiveTask = AvgActiveTask > 0 ? 1 : 0;",
    "RunningTask = AvgRunningTask > 0 ? 1 : 0;",
    "$TargetLowPriorityNodes = min(cappedPoolSize,max(ActiveTask,RunningTask));",
    "// Set node deallocation mode - keep nodes active only until tasks finish",
    "$NodeDeallocationOption = taskcompletion;",
])
SERVICE = "$TargetDedicatedNodes={};$TargetLowPriorityNodes={};$NodeDeallocationOption={}"


def seed_text(target: int, active: str, running: str) -> str:
    """The seed formula's results text when it ran through (samples=100)."""
    active_flag, running_flag = ("1" if value != "0" else "0" for value in (active, running))
    return (SERVICE.format(0, target, "taskcompletion")
            + f";ActiveTask={active_flag};AvgActiveTask={active};AvgRunningTask={running};"
            f"cappedPoolSize=1;RunningTask={running_flag};samples=100")


class SimulatedPool:
    """A one-node spot pool run by the seed formula: samples every 30 s, an evaluation
    every 5 minutes, a node ready 2 minutes after the target asks for it, two slots, and a
    node released (taskcompletion) once the target drops and its tasks are done."""

    def __init__(self, task_minutes: float = 3.0):
        self.formula = parse(SEED_FORMULA)
        self.history = SampleHistory()
        self.task_seconds = task_minutes * MINUTE
        self.now = T0
        self.target = 0
        self.nodes = 0
        self.boot_done: Optional[float] = None
        self.waiting = 0
        self.running: List[float] = []  # end times
        self.runs: Dict[float, Evaluation] = {}
        self.states: Dict[float, Tuple[int, int]] = {}  # time: (waiting, running)

    def add_tasks(self, count: int) -> None:
        self.waiting += count

    def run_until(self, minutes: float) -> None:
        while self.now < T0 + minutes * MINUTE:
            self.now += 30.0
            self.tick()

    def tick(self) -> None:
        self.running = [end for end in self.running if end > self.now]
        if self.boot_done is not None and self.now >= self.boot_done:
            self.nodes, self.boot_done = 1, None
        if self.nodes and self.target == 0 and not self.running:
            self.nodes = 0
        while self.nodes and self.waiting and len(self.running) < 2:
            self.waiting -= 1
            self.running.append(self.now + self.task_seconds)
        self.states[self.now] = (self.waiting, len(self.running))
        self.history.record(self.now, {
            "ActiveTasks": self.waiting, "RunningTasks": len(self.running),
            "CurrentLowPriorityNodes": self.nodes})
        if (self.now - T0) % 300 == 0:
            self.evaluate()

    def evaluate(self) -> None:
        run = evaluate(self.formula, self.history, self.now, {
            "TargetLowPriorityNodes": self.target, "CurrentLowPriorityNodes": self.nodes})
        self.runs[(self.now - T0) / MINUTE] = run
        self.target = run.target_low_priority_nodes
        if self.target and not self.nodes and self.boot_done is None:
            self.boot_done = self.now + 2 * MINUTE


def test_the_seed_formula_scales_its_pool_from_0_to_1_spot_node_and_back():
    pool = SimulatedPool()
    pool.run_until(16)
    pool.add_tasks(4)  # 4 tasks of 3 minutes arrive at minute 16; 2 slots
    pool.run_until(45)
    texts = {minute: run.text for minute, run in pool.runs.items()}
    assert texts[10] == texts[15] == seed_text(0, "0", "0")
    # Minute 20: tasks waited in (18, 19] -> a node is asked for.
    assert texts[20] == seed_text(1, "4", "0")
    # The node is ready at 22 and runs 2 tasks at a time until minute 28.
    assert texts[25] == seed_text(1, "2", "0.555555555555556")  # 5 of 18 samples at 2
    assert texts[30] == seed_text(1, "0", "1.33333333333333")
    assert texts[35] == seed_text(1, "0", "0.555555555555556")  # still ran in (25, 34]
    assert texts[40] == texts[45] == seed_text(0, "0", "0")
    assert [pool.runs[m].target_low_priority_nodes for m in (15, 20, 35, 40)] == [0, 1, 1, 0]
    assert pool.nodes == 0 and pool.waiting == 0 and not pool.running


def test_a_young_pool_has_too_few_samples_for_the_seed_formulas_ten_minute_window():
    pool = SimulatedPool()
    pool.run_until(5)
    run = pool.runs[5]
    # 5 minutes of history: the 5-minute percent is 100, so the formula asks for the samples
    # of (1, 10] minutes ago: 8 of 18. The pool keeps its targets, as Azure leaves it.
    assert run.error is not None and run.error.code == "InsufficientSampleData"
    assert run.error.message == "Autoscale evaluation failed due to insufficient sample data"
    assert run.error.values == [{"name": "Message", "value": (
        "Line 4, Col 95: Insufficient data from data set: $RunningTasks wanted 70%, "
        "received 44.4444444444444%")}]
    assert run.text == SERVICE.format(0, 0, "requeue")
    assert run.values == {}


def test_the_seed_formula_asks_for_at_most_one_spot_node_whatever_the_load():
    """Property: random arrivals and task lengths; every evaluation after the first ten
    minutes succeeds, dedicated nodes stay 0, and one spot node is asked for exactly when
    tasks waited in the minute before the last one or ran in the 9 minutes before it."""
    rng = random.Random(23)
    for _ in range(15):
        pool = SimulatedPool(task_minutes=rng.choice([0.5, 2, 7]))
        for minute in range(10, 60, 5):
            pool.run_until(minute + rng.random() * 5)
            if rng.random() < 0.4:
                pool.add_tasks(rng.randint(1, 6))
        pool.run_until(60)
        for minute, run in pool.runs.items():
            if minute < 10:
                continue
            assert run.error is None, run.error
            assert run.values["$TargetDedicatedNodes"] == 0
            now = T0 + minute * MINUTE
            waited = any(pool.states[now - s][0] for s in (60, 90))
            ran = any(pool.states[now - s][1] for s in range(60, 600, 30))
            assert run.target_low_priority_nodes == (1 if waited or ran else 0)


# --- helpers for single formulas ------------------------------------------------------------

def history_of(name: str, values: List[float], end: float = T0, period: float = 30.0,
               skip: int = 0) -> SampleHistory:
    """Samples of ``name`` every ``period`` s, the last at ``end`` minus ``skip`` periods."""
    history = SampleHistory()
    last = end - skip * period
    for index, value in enumerate(values):
        history.record(last - (len(values) - 1 - index) * period, {name: value})
    return history


def run(formula: str, history: Optional[SampleHistory] = None, **current: object) -> Evaluation:
    return evaluate(parse(formula), history or SampleHistory(), T0, current,
                    random=random.Random(7))


def result(expression: str, history: Optional[SampleHistory] = None) -> str:
    """The results text of ``x = expression``: what follows the service variables."""
    evaluation = run("x = " + expression, history)
    assert evaluation.error is None, evaluation.error
    return evaluation.text.split(";x=")[1]


def run_error(formula: str, history: Optional[SampleHistory] = None) -> FormulaError:
    evaluation = run(formula, history)
    assert evaluation.error is not None, evaluation.text
    assert evaluation.text == SERVICE.format(0, 0, "requeue")  # the pool's own targets
    return evaluation.error


def parse_error(formula: str) -> FormulaError:
    with pytest.raises(FormulaError) as caught:
        parse(formula)
    return caught.value


# --- functions ------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, text", [
    ("avg(1, {2, 3}, 6)", "3"),  # a doubleVecList: doubles and doubleVecs, flattened
    ("len({1, 2}, 3)", "3"),
    ("lg(8)", "3"), ("lg({2, 4})", "[1,2]"),
    ("ln(1)", "0"), ("ln({1})", "[0]"),
    ("log(1000)", "3"), ("log({10, 100})", "[1,2]"),
    ("max(1, {5, 2})", "5"), ("min(4, {5, 2})", "2"),
    ("norm(3, 4)", "5"),
    ("percentile({5, 1, 4, 2, 3}, 50)", "3"), ("percentile({5, 1, 4, 2, 3}, 100)", "5"),
    ("range({1, 5, 3})", "4"),
    ("std(1, 2, 3)", "1"), ("std(2, 4)", "1.4142135623731"),  # sample std, 15 digits
    ("sum({1, 2}, 3.5)", "6.5"),
    ("val({7, 8, 9}, 1)", "8"),
    ("ceil(1.2)", "2"), ("ceil({1.1, -1.9})", "[2,-1]"),
    ("floor(-1.5)", "-2"), ("floor({1.9, 2})", "[1,2]"),
    ("round(2.5)", "3"), ("round(-2.5)", "-3"), ("round({0.4, 1.6})", "[0,2]"),
    ("time()", "2023-11-14T22:13:20.000Z"),
    ('time("2016-10-13T19:18:47.805Z")', "2016-10-13T19:18:47.805Z"),
    ('time("2016-10-13T21:18:47+02:00")', "2016-10-13T19:18:47.000Z"),
    ('time("Thu, 13 Oct 2016 19:18:47 GMT")', "2016-10-13T19:18:47.000Z"),
    ('time("2024-03-04T10:20:30Z").weekday', "1"),  # a Monday
    ('time("2024-03-10T10:20:30Z").weekday', "7"),
    ('time("2024-03-04T10:20:30Z").hour * 100 + time("2024-03-04T10:20:30Z").minute', "1020"),
    ("{1, 2} * 2", "[2,4]"),
    ("{}", "[]"),
])
def test_each_documented_function(expression, text):
    assert result(expression) == text


def test_rand_stays_between_0_and_1():
    values = [float(result("rand()")) for _ in range(3)]
    assert values == [values[0]] * 3  # the seeded generator the test passed
    draws = [evaluate(parse("x = rand()"), SampleHistory(), T0, {}).values["x"]
             for _ in range(200)]
    assert all(0 <= draw < 1 for draw in draws) and len(set(draws)) > 150


def test_stop_ends_the_evaluation_keeping_what_was_set():
    evaluation = run("a = 1; $TargetDedicatedNodes = 2; stop(); b = 2; $TargetDedicatedNodes = 3")
    assert evaluation.error is None
    assert evaluation.text == SERVICE.format(2, 0, "requeue") + ";a=1"
    assert evaluation.values == {"$TargetDedicatedNodes": 2.0, "a": 1.0}


@pytest.mark.parametrize("expression, col, detail", [
    ("avg({})", 8, "avg of an empty doubleVec"),
    ("val({1, 2}, 2)", 8, "val: index 2 is outside the doubleVec of 2 elements"),
    ("percentile({1}, 101)", 15, "percentile takes a percentile from 0 to 100, not 101"),
    ("val(1, 0)", 8, "val takes a doubleVec and a double, not double and double"),
    ('max("a")', 8, "max takes doubles and doubleVecs, not string"),
    ('time("2023-04-14T10:00:00.123456789Z")', 9,  # nanoseconds: Azure refuses them too
     "time: '2023-04-14T10:00:00.123456789Z' is neither a W3C-DTF nor an RFC 1123 date"),
    ("time(1)", 9, "time takes a string, not double"),
    ("(1).hour", 9, "double has no member hour"),
    ("time().hours", 12, "timestamp has no member hours"),
])
def test_a_function_given_what_it_cannot_take_fails_the_evaluation(expression, col, detail):
    error = run_error("x = " + expression)
    assert error.code == "FormulaEvaluationError"
    assert error.values == [{"name": "Message", "value": "Line 1, Col %d: %s" % (col, detail)}]


# --- operators ------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, text", [
    ("1 + 2 * 3 - 4 / 8", "6.5"), ("(1 + 2) * 3", "9"), ("-2 * -3", "6"), ("1 / 3", "0.333333333333333"),
    ("1 / 0", "Infinity"), ("-1 / 0", "-Infinity"), ("0 / 0", "NaN"), ("1e15 + 1", "1E+15"),
    ("0.00001", "1E-05"), ("-0", "0"),
    ("2 * TimeInterval_Minute", "00:02:00"), ("TimeInterval_Hour * 26", "1.02:00:00"),
    ("TimeInterval_Minute / 4", "00:00:15"), ("-TimeInterval_Second", "-00:00:01"),
    ("TimeInterval_Day + TimeInterval_Millisecond", "1.00:00:00.0010000"),
    ("TimeInterval_Week - TimeInterval_Day", "6.00:00:00"),
    ("TimeInterval_Year", "365.00:00:00"), ("TimeInterval_Zero", "00:00:00"),
    ("TimeInterval_100ns * 3", "00:00:00.0000003"), ("TimeInterval_Microsecond", "00:00:00.0000010"),
    ('time("2024-01-01T00:00:00Z") + TimeInterval_Hour', "2024-01-01T01:00:00.000Z"),
    ('TimeInterval_Hour + time("2024-01-01T00:00:00Z")', "2024-01-01T01:00:00.000Z"),
    ('time("2024-01-02T00:00:00Z") - time("2024-01-01T00:00:00Z")', "1.00:00:00"),
    ("{1, 2} + 1", "[2,3]"), ("{1, 2} - {1, 1}", "[0,1]"), ("{2, 4} / {2, 2}", "[1,2]"),
    ("1 < 2", "1"), ("2 <= 1", "0"), ("1 == 1", "1"), ("1 != 1", "0"), ("3 >= 3", "1"),
    ("3 > 4", "0"), ('"abc" < "abd"', "1"), ('"a" == "a"', "1"),
    ("TimeInterval_Minute > TimeInterval_Second", "1"), ("time() == time()", "1"),
    ("1 < 2 == 1", "1"),  # relational binds tighter than equality
    ("1 && 0", "0"), ("1 || 0", "1"), ("!0", "1"), ("!3", "0"), ("0 || 0 && 1", "0"),
    ("1 ? 2 : 3", "2"), ("0 ? 2 : 0 ? 3 : 4", "4"), ("0.5 ? 10 : 20", "10"),
    ("1 ? 0 ? 5 : 6 : 7", "6"),
    ("taskcompletion", "taskcompletion"), ('"text"', "text"),
])
def test_each_documented_operator(expression, text):
    assert result(expression) == text


@pytest.mark.parametrize("expression, col, detail", [
    ("1 + TimeInterval_Second", 7, "Operator + is not defined for double and timeinterval"),
    ("time() - TimeInterval_Hour", 12, "Operator - is not defined for timestamp and timeinterval"),
    ("1 - {1, 2}", 7, "Operator - is not defined for double and doubleVec"),
    ("{1, 2} + {1}", 12, "The doubleVecs have different lengths (2 and 1)"),
    ('1 < "a"', 7, "Operator < is not defined for double and string"),
    ("{1} < 2", 9, "Operator < is not defined for doubleVec and double"),
    ("!TimeInterval_Hour", 5, "Operator ! is not defined for timeinterval"),
    ('"a" && 1', 9, "&& needs a double, not string"),
    ("{1} ? 1 : 2", 9, "?: needs a double, not doubleVec"),
])
def test_an_operator_outside_the_documented_table_fails_the_evaluation(expression, col, detail):
    error = run_error("x = " + expression)
    assert error.values == [{"name": "Message", "value": "Line 1, Col %d: %s" % (col, detail)}]


def test_logical_operators_and_ternaries_skip_what_they_do_not_need():
    empty = SampleHistory()  # any GetSample over an interval would fail on it
    formula = ("a = 0 && max($PendingTasks.GetSample(TimeInterval_Hour));"
               "b = 1 || max($PendingTasks.GetSample(TimeInterval_Hour));"
               "c = $PendingTasks.GetSamplePercent(TimeInterval_Hour) < 70 ? -1 :"
               " avg($PendingTasks.GetSample(TimeInterval_Hour))")
    assert run(formula, empty).text == SERVICE.format(0, 0, "requeue") + ";a=0;b=1;c=-1"
    error = run_error("c = 1 ? avg($PendingTasks.GetSample(TimeInterval_Hour)) : 0", empty)
    assert error.code == "InsufficientSampleData"


# --- samples --------------------------------------------------------------------------------

def test_get_sample_fails_below_the_asked_percent_as_the_docs_example_does():
    # 10 minutes of $CPUPercent with the last minute missing: 18 of 20 samples, 90 percent.
    history = history_of("CPUPercent", [float(i) for i in range(18)], skip=2)
    error = run_error("x = $CPUPercent.GetSample(TimeInterval_Minute * 10, 95)", history)
    assert error.code == "InsufficientSampleData"
    assert error.values == [{"name": "Message", "value": (
        "Line 1, Col 26: Insufficient data from data set: $CPUPercent wanted 95%, received 90%")}]
    assert result("$CPUPercent.GetSample(TimeInterval_Minute * 10, 80)", history) == (
        "[" + ",".join(str(i) for i in range(18)) + "]")
    assert result("$CPUPercent.GetSamplePercent(TimeInterval_Minute * 10)", history) == "90"
    # Without a percent GetSample wants 70 (Azure's "wanted 70%" for a bare GetSample(sli)).
    assert result("len($CPUPercent.GetSample(TimeInterval_Minute * 10))", history) == "18"
    sparse = history_of("CPUPercent", [1.0] * 13, skip=7)
    error = run_error("x = $CPUPercent.GetSample(TimeInterval_Minute * 10)", sparse)
    assert error.detail.endswith("$CPUPercent wanted 70%, received 65%")


def test_get_sample_windows_count_back_from_now_or_between_timestamps():
    history = history_of("RunningTasks", [float(i) for i in range(21)])  # minute -10 .. 0
    assert result("$RunningTasks.GetSample(1)", history) == "[20]"
    assert result("$RunningTasks.GetSample(3)", history) == "[18,19,20]"  # oldest first
    assert result("$RunningTasks.GetSample(TimeInterval_Minute)", history) == "[19,20]"
    assert result(
        "$RunningTasks.GetSample(1 * TimeInterval_Minute, 2 * TimeInterval_Minute)", history,
    ) == "[17,18]"
    assert result(
        "$RunningTasks.GetSample(2 * TimeInterval_Minute, 1 * TimeInterval_Minute, 100)",
        history) == "[17,18]"
    assert result(
        "$RunningTasks.GetSample(time() + (-2 * TimeInterval_Minute), time())", history,
    ) == "[17,18,19,20]"
    assert result("$RunningTasks.GetSamplePercent(TimeInterval_Minute * 20)", history) == "52.5"
    assert result("$RunningTasks.GetSamplePercent(TimeInterval_Minute, TimeInterval_Minute * 3)",
                  history) == "100"
    assert result("$RunningTasks.Count()", history) == "21"
    assert result("$RunningTasks.HistoryBeginTime()", history) == "2023-11-14T22:03:20.000Z"
    assert result("$RunningTasks.GetSamplePeriod()", history) == "00:00:30"


def test_a_variable_without_samples_behaves_as_azures_before_the_first_sample():
    empty = SampleHistory()
    assert result("$SucceededTasks.GetSample(1)", empty) == "[]"
    assert result("max(0, $FailedTasks.GetSample(1))", empty) == "0"
    assert result("$PreemptedNodeCount.GetSamplePercent(TimeInterval_Minute * 3)", empty) == "0"
    assert result("$PreemptedNodeCount.Count()", empty) == "0"
    assert result("$CPUPercent.HistoryBeginTime()", empty) == "2023-11-14T22:13:20.000Z"
    error = run_error("x = $SampleNodeCount.GetSample(TimeInterval_Minute * 3, 1)", empty)
    assert error.detail == ("Line 1, Col 31: Insufficient data from data set: $SampleNodeCount"
                            " wanted 1%, received 0%")


def test_the_history_keeps_what_the_longest_look_back_needs():
    history = SampleHistory(keep=600)
    for i in range(200):  # 100 minutes
        history.record(T0 - (199 - i) * 30, {"$PendingTasks": 1, "CurrentDedicatedNodes": 2})
    assert history.count("$PendingTasks") == 21  # 10 minutes and the sample before
    evaluation = run("x = $PendingTasks.GetSamplePercent(TimeInterval_Hour)", history)
    assert evaluation.values["x"] == 100 * 21 / 120
    for i in range(1, 200):
        history.record(T0 + i * 30, {"$PendingTasks": 1})
    assert history.count("$PendingTasks") == 121  # now an hour is kept
    assert history.count("$CurrentDedicatedNodes") == 21  # not recorded since
    with pytest.raises(ValueError, match="older than the last one"):
        history.record(T0, {"PendingTasks": 1})
    with pytest.raises(ValueError, match="not a read-only service variable: \\$Pending"):
        history.record(T0 + 10**6, {"Pending": 1})


def test_pending_tasks_are_active_and_running_when_not_recorded_apart():
    history = SampleHistory()
    history.record(T0, {"ActiveTasks": 2, "RunningTasks": 3})
    assert result("$PendingTasks.GetSample(1)", history) == "[5]"


# --- variables and the results text ---------------------------------------------------------

def test_the_results_text_lists_the_service_variables_then_the_user_variables_by_name():
    evaluation = run(
        "zeta = 1; $isWeekday = 1; Alpha = {1, 2, 3}; beta = \"s\"; $curTime = time();"
        "span = TimeInterval_Minute * 5; $TargetLowPriorityNodes = 2.5",
        TargetDedicatedNodes=3, NodeDeallocationOption="retaineddata")
    assert evaluation.text == (
        "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=2.5;$NodeDeallocationOption=retaineddata;"
        "$curTime=2023-11-14T22:13:20.000Z;$isWeekday=1;Alpha=[1,2,3];beta=s;span=00:05:00;zeta=1")
    assert evaluation.values["Alpha"] == (1.0, 2.0, 3.0)
    assert set(evaluation.values) == {
        "$TargetLowPriorityNodes", "$curTime", "$isWeekday", "Alpha", "beta", "span", "zeta"}
    assert evaluation.target_dedicated_nodes == 3  # not set: the pool's own target
    assert evaluation.target_low_priority_nodes == 2  # fractions truncated
    assert evaluation.node_deallocation_option == "retaineddata"


def test_the_pools_values_are_what_a_formula_reads_before_setting_them():
    evaluation = run(
        "$TargetDedicatedNodes = max(0, $TargetDedicatedNodes / 2);"
        "slots = $TaskSlotsPerNode; spot = $CurrentLowPriorityNodes + $CurrentDedicatedNodes;"
        "usable = $UsableNodeCount",
        TargetDedicatedNodes=8, TaskSlotsPerNode=2, CurrentLowPriorityNodes=1, **{
            "$CurrentDedicatedNodes": 4})
    assert evaluation.text == SERVICE.format(4, 0, "requeue") + ";slots=2;spot=5;usable=0"


def test_the_aliases_set_the_targets_and_the_full_names_win():
    assert run("$TargetDedicated = 4; $TargetLowPriority = 1").text == SERVICE.format(
        4, 1, "requeue")
    assert run("$TargetDedicatedNodes = 2; $TargetDedicated = 4; x = $TargetDedicated").text == (
        SERVICE.format(2, 0, "requeue") + ";x=4")


@pytest.mark.parametrize("formula, detail", [
    ("x = y + 1", "Line 1, Col 5: y is not defined"),
    ("something_useless", "Line 1, Col 1: something_useless is not defined"),
    ("$x = 1; y = x", "Line 1, Col 13: x is not defined"),  # "$x" and "x" are two names
    ("x = $PendingTasks + 1",
     "Line 1, Col 5: $PendingTasks is a set of samples: use $PendingTasks.GetSample(...)"),
    ("$NodeDeallocationOption = 1",
     "Line 1, Col 1: $NodeDeallocationOption must be one of requeue, terminate, taskcompletion,"
     " retaineddata, not 1"),
    ('$NodeDeallocationOption = "later"',
     "Line 1, Col 1: $NodeDeallocationOption must be one of requeue, terminate, taskcompletion,"
     " retaineddata, not later"),
    ("\r\n$TargetDedicatedNodes = {1}", "Line 2, Col 1: $TargetDedicatedNodes must be a double,"
     " not doubleVec"),
    ("x = $PendingTasks.GetSample(1, 50)",
     "Line 1, Col 28: GetSample takes a timeinterval or a timestamp, not double"),
    ("x = $PendingTasks.GetSample(TimeInterval_Hour, 50, 2)",
     "Line 1, Col 28: GetSample takes a count, or a start, an end and a percent"),
    ("x = $PendingTasks.GetSamplePercent(TimeInterval_Hour, 5)",
     "Line 1, Col 35: GetSamplePercent takes a start and an end"),
])
def test_a_run_time_error_leaves_the_pool_as_it_is(formula, detail):
    error = run_error(formula)
    assert (error.code, error.message) == (
        "FormulaEvaluationError", "Autoscale evaluation failed due to an error in the formula")
    assert error.values == [{"name": "Message", "value": detail}]


def test_string_node_deallocation_options_are_accepted():
    assert run('$NodeDeallocationOption = "terminate"').text == SERVICE.format(0, 0, "terminate")


# --- formula errors -------------------------------------------------------------------------

@pytest.mark.parametrize("formula, detail", [
    ("a = ", "Line 1, Col 5: Expected an expression but found the end of the formula"),
    ("a = 1\r\nb = 2", "Line 2, Col 1: Expected ';' but found 'b'"),  # a line break is no ';'
    ("a = (1 + 2", "Line 1, Col 11: Expected ')' but found the end of the formula"),
    ("a = 1 +* 2", "Line 1, Col 8: Expected an expression but found '*'"),
    ("a = b = 1", "Line 1, Col 7: Expected ';' but found '='"),
    ("a = 1 ? 2", "Line 1, Col 10: Expected ':' but found the end of the formula"),
    ("a = {1, 2", "Line 1, Col 10: Expected ',' but found the end of the formula"),
    ("a = 1 % 2", "Line 1, Col 7: Invalid character '%'"),
    ("a = $", "Line 1, Col 5: Invalid character '$'"),
    ("a = 'x'", "Line 1, Col 5: Invalid character '''"),
    ('a = "x\n"', "Line 1, Col 5: Unterminated string"),
    ("a = 1; /* no end\n", "Line 1, Col 8: Unterminated comment"),
    ("a = foo(1)", "Line 1, Col 5: Unknown function foo"),
    ("a = $PendingTasks.GetSamples(1)", "Line 1, Col 19: Unknown method GetSamples"),
    ("b = 1; a = b.GetSample(1)", "Line 1, Col 14: GetSample is a method of the service-defined"
     " variables"),
    ("a = $PendingTasks.$Count()", "Line 1, Col 19: Expected a member or method name but found"
     " '$Count'"),
    ("a = avg()", "Line 1, Col 8: avg takes at least 1 argument, not 0"),
    ("a = val({1})", "Line 1, Col 8: val takes 2 arguments, not 1"),
    ("a = rand(1)", "Line 1, Col 9: rand takes 0 arguments, not 1"),
    ("a = time(1, 2)", "Line 1, Col 9: time takes 0 to 1 arguments, not 2"),
    ("a = $PendingTasks.GetSample()", "Line 1, Col 28: GetSample takes 1 to 3 arguments, not 0"),
    ("a = $PendingTasks.Count(1)", "Line 1, Col 24: Count takes 0 arguments, not 1"),
    ("$PendingTasks = 1", "Line 1, Col 1: $PendingTasks is read-only and cannot be assigned"),
    ("\n  $CurrentDedicatedNodes = 1",
     "Line 2, Col 3: $CurrentDedicatedNodes is read-only and cannot be assigned"),
    ("TimeInterval_Hour = 2", "Line 1, Col 1: TimeInterval_Hour is read-only and cannot be"
     " assigned"),
    ("requeue = 2", "Line 1, Col 1: requeue is read-only and cannot be assigned"),
])
def test_a_formula_error_is_azures_syntax_error(formula, detail):
    error = parse_error(formula)
    assert (error.code, error.message) == (
        "AutoScalingFormulaSyntaxError", "The specified auto-scaling formula has a syntax error.")
    assert error.values == [{"key": "Message", "value": detail}]


def test_a_formula_over_8_kb_or_100_statements_is_too_long():
    error = parse_error("a = 1;" + " " * 8187)  # 8193 characters
    assert (error.code, error.message) == (
        "AutoScalingFormulaTooLong", "The specified auto-scaling formula exceeds lengths limit.")
    assert error.detail == "The formula is 8193 characters long; the limit is 8192"
    assert len(parse("a = 1;" + " " * 8186).statements) == 1  # 8192 is allowed
    assert len(parse("a = 1;" * 100).statements) == 100
    error = parse_error("a = 1;" * 101)
    assert (error.code, error.detail) == (
        "AutoScalingFormulaTooLong", "The formula has 101 statements; the limit is 100")


def test_deep_formulas_are_refused_before_they_exhaust_pythons_stack():
    assert parse_error("x = " + "(" * 65 + "1" + ")" * 65).detail == (
        "Line 1, Col 69: The expression nests deeper than 64 levels")
    assert parse_error("x = " + "-" * 70 + "1").detail == (
        "Line 1, Col 68: The expression nests deeper than 64 levels")
    assert parse_error("y = 1;\nx = " + "+".join(["1"] * 129)).detail == (
        "Line 2, Col 1: The statement is deeper than 128 levels")
    assert result("(" * 60 + "+".join(["1"] * 128) + ")" * 60) == "128"
    assert result("1 ? " * 60 + "1" + " : 2" * 60) == "1"


@pytest.mark.parametrize("expression, col, detail", [
    ("TimeInterval_Second / 0", 25, "The timeinterval is outside the range of a TimeSpan"),
    ("time() + TimeInterval_Year * 1e5", 32, "The timeinterval is outside the range of a TimeSpan"),
    ("time() + TimeInterval_Year * 8000", 12, "The timestamp is outside the years 1 to 9999"),
    ("$PendingTasks.GetSample(0 / 0)", 28, "GetSample takes a count, not NaN"),
])
def test_values_out_of_dotnets_ranges_fail_the_evaluation(expression, col, detail):
    assert run_error("x = " + expression).detail == "Line 1, Col %d: %s" % (col, detail)


def test_statements_may_span_lines_and_empty_statements_are_ignored():
    formula = parse(";;\r\n$totalDedicatedNodes =\r\n    (min(4, 5) > 0.7) ?\r\n"
                    "    (2 * 1.1) : 1;;\r\n$TargetDedicatedNodes = min(400, $totalDedicatedNodes)")
    assert len(formula.statements) == 2
    assert evaluate(formula, SampleHistory(), T0, {}).text == (
        SERVICE.format("2.2", 0, "requeue") + ";$totalDedicatedNodes=2.2")


# --- comments -------------------------------------------------------------------------------

def test_comments_are_ignored_wherever_they_are():
    formula = (
        "// Get pending tasks for the past 15 minutes.\r\n"
        "a = 1; // a comment holding a ; and a /* \r\n"
        "/* a block\r\n   over lines; with = signs */ b = /* inline */ 2;\r\n"
        "c = 3 // the last statement needs no ;")
    assert run(formula).text == SERVICE.format(0, 0, "requeue") + ";a=1;b=2;c=3"


def test_positions_count_lines_across_comments():
    error = parse_error("/* one\r\ntwo */ a = 1;\r\n// three\r\n  b = ;")
    assert error.detail == "Line 4, Col 7: Expected an expression but found ';'"
    error = run_error("// first line\nx =\n  y")
    assert error.detail == "Line 3, Col 3: y is not defined"


# --- the documented examples ----------------------------------------------------------------

def test_the_documented_time_based_example():
    formula = (
        '$curTime = time("2016-10-13T19:18:47.805Z");\n'  # the docs' evaluation time
        "$workHours = $curTime.hour >= 8 && $curTime.hour < 18;\n"
        "$isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;\n"
        "$isWorkingWeekdayHour = $workHours && $isWeekday;\n"
        "$TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;\n")
    assert run(formula).text == (  # as the docs print it, with today's $TargetLowPriorityNodes
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$curTime=2016-10-13T19:18:47.805Z;$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0")


def test_the_documented_pending_tasks_example():
    formula = (
        "startingNumberOfVMs = 1;\nmaxNumberofVMs = 25;\n"
        "pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);\n"
        "pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : "
        "avg($PendingTasks.GetSample(180 * TimeInterval_Second));\n"
        "$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);\n"
        "$NodeDeallocationOption = taskcompletion;")
    idle = history_of("PendingTasks", [0.0] * 7)
    assert run(formula, idle).text == (  # as a pool answered it (a project on GitHub)
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;"
        "maxNumberofVMs=25;pendingTaskSamplePercent=100;pendingTaskSamples=0;startingNumberOfVMs=1")
    busy = history_of("PendingTasks", [30.0, 40, 50, 60, 70, 80, 90])
    assert run(formula, busy).values["$TargetDedicatedNodes"] == 25
    assert run(formula, SampleHistory()).values["$TargetDedicatedNodes"] == 1


def test_a_formula_can_be_passed_as_text():
    assert evaluate("$TargetDedicatedNodes=3", SampleHistory(), T0, {}).text == SERVICE.format(
        3, 0, "requeue")


_PIECES = (
    "x", "$y", "=", ";", "(", ")", "{", "}", ",", "+", "-", "*", "/", "!", "<", "==", "&&", "||",
    "?", ":", ".", "1", "0", "2.5", "1e308", '"s"', "TimeInterval_Minute", "TimeInterval_Year",
    "time()", 'time("2020-01-01")', "hour", ".weekday", "$PendingTasks", "GetSample", "avg",
    "max", "val", "percentile", "lg", "round", "len", "std", "rand()", "stop()", "Count()",
    "$TargetDedicatedNodes", "$NodeDeallocationOption", "taskcompletion",
    "$CurrentDedicatedNodes", "//c\n", "/*c*/", "\r\n", "{1,2}", "$PendingTasks.GetSample(1)",
    "$PendingTasks.GetSample(TimeInterval_Minute, 10)", "$PendingTasks.HistoryBeginTime()",
)


def test_any_formula_parses_or_fails_as_azure_would_and_never_crashes():
    """Property: random token soups either parse or raise FormulaError, and a parsed one
    evaluates to an Evaluation (its error, if any, is a FormulaError), never a traceback."""
    rng = random.Random(2)
    history = history_of("PendingTasks", [float(i) for i in range(20)])
    parsed = 0
    for _ in range(4000):
        text = " ".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
        try:
            formula = parse(text)
        except FormulaError as error:
            assert error.code in ("AutoScalingFormulaSyntaxError", "AutoScalingFormulaTooLong")
            continue
        parsed += 1
        evaluation = evaluate(formula, history, T0, {"TargetDedicatedNodes": 1})
        assert evaluation.text.startswith("$TargetDedicatedNodes=")
        assert evaluation.error is None or isinstance(evaluation.error, FormulaError)
    assert parsed > 100


# --- the documentation ----------------------------------------------------------------------

def page_examples() -> List[Tuple[str, str]]:
    """docs/autoscale.md's examples: a formula block marked <!-- example --> and the next
    block, its results text (and, for an error, its code, message and value)."""
    page = (Path(__file__).parent.parent / "docs" / "autoscale.md").read_text()
    blocks = re.findall(r"(<!-- example -->\n)?```\w*\n(.*?)```", page, re.DOTALL)
    return [(formula, blocks[index + 1][1].strip())
            for index, (marker, formula) in enumerate(blocks) if marker]


def test_the_pages_examples_give_what_the_page_shows():
    examples = page_examples()
    assert len(examples) == 2
    for formula, shown in examples:
        evaluation = run(formula)  # a pool with no samples and both targets 0
        lines = [evaluation.text]
        if evaluation.error:
            lines += ["%s: %s" % (evaluation.error.code, evaluation.error.message),
                      evaluation.error.detail]
        assert "\n".join(lines) == shown


def test_the_pages_seed_formula_is_the_one_tested():
    page = (Path(__file__).parent.parent / "docs" / "autoscale.md").read_text()
    assert "```text\n" + SEED_FORMULA.replace("\r\n", "\n") + "\n```" in page
