using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CsCheck;

namespace Bifrost.Middleware.Tests.Fuzz;

/// <summary>
/// How long and with which seed the fuzz suite runs. CI: a fixed seed and a modest number of cases per test. Locally:
/// <c>BIFROST_FUZZ_ITERATIONS</c> (cases per test), <c>BIFROST_FUZZ_SEED</c> (a number, or <c>random</c>) and
/// <c>BIFROST_FUZZ_CASE</c> (replay one case number of a failure report).
/// </summary>
public static class FuzzSettings
{
    public const ulong DefaultSeed = 20261205;

    public static int Iterations(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("BIFROST_FUZZ_ITERATIONS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : ciDefault;

    public static ulong Seed { get; } = ReadSeed();

    public static int? OnlyCase =>
        int.TryParse(Environment.GetEnvironmentVariable("BIFROST_FUZZ_CASE"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    /// <summary>The generator state of case <paramref name="index"/> (each case has its own stream, so one can be replayed alone).</summary>
    public static PCG Pcg(int index) => new((uint)index, Seed);

    public static string Replay(int index) => $"BIFROST_FUZZ_SEED={Seed} BIFROST_FUZZ_CASE={index}";

    private static ulong ReadSeed()
    {
        var text = Environment.GetEnvironmentVariable("BIFROST_FUZZ_SEED");
        if (string.IsNullOrWhiteSpace(text))
        {
            return DefaultSeed;
        }

        if (text.Equals("random", StringComparison.OrdinalIgnoreCase))
        {
            return (ulong)Random.Shared.NextInt64();
        }

        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seed)
            ? seed
            : BitConverter.ToUInt64(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }
}

/// <summary>One generated case: its number, its target (route, path, base) and the mutated body.</summary>
public sealed record FuzzCase(int Index, FuzzTarget Target, MutatedBody Body);

/// <summary>A failing case with the violations it showed.</summary>
public sealed record FuzzFailure(FuzzCase Case, IReadOnlyList<FuzzViolation> Violations);

/// <summary>Generates cases by mutation, runs them in parallel, shrinks one failure of each kind and writes an actionable report.</summary>
public static class FuzzRunner
{
    /// <summary>At most this many failure groups are shrunk (each shrink re-runs the case many times).</summary>
    private const int MaxShrunk = 8;

    /// <summary>
    /// Cases 0..<paramref name="iterations"/>-1 over <paramref name="targets"/>: case i mutates node
    /// (i / targets) mod nodes of target i mod targets — so every node of every base is reached in turn — with a
    /// mutation drawn by CsCheck from the case's own seed.
    /// </summary>
    public static List<FuzzCase> Cases(IReadOnlyList<FuzzTarget> targets, int iterations)
    {
        var cases = new List<FuzzCase>(iterations);
        var nodeCounts = targets.Select(t => JsonMutation.Nodes(t.Base).Count).ToArray();
        for (var i = 0; i < iterations; i++)
        {
            if (FuzzSettings.OnlyCase is { } only && only != i)
            {
                continue;
            }

            var t = i % targets.Count;
            var node = (i / targets.Count) % nodeCounts[t];
            var spec = JsonMutation.Spec(node).Generate(FuzzSettings.Pcg(i), null!, out _);
            cases.Add(new FuzzCase(i, targets[t], JsonMutation.Apply(targets[t].Base, spec)));
        }

        return cases;
    }

    /// <summary>Runs every case (<paramref name="parallelism"/> at a time), then fails with a report of what broke.</summary>
    public static async Task RunAsync(string name, IReadOnlyList<FuzzCase> cases, Func<FuzzTarget, string, Task<List<FuzzViolation>>> check, int parallelism = 8)
    {
        var clock = Stopwatch.StartNew();
        var failures = new ConcurrentBag<FuzzFailure>();
        var statuses = new ConcurrentDictionary<string, int>();
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = TestContext.Current.CancellationToken }, async (c, _) =>
        {
            var violations = await check(c.Target, c.Body.Text);
            statuses.AddOrUpdate(violations.Count == 0 ? "ok" : "failed", 1, static (_, n) => n + 1);
            if (violations.Count > 0)
            {
                failures.Add(new FuzzFailure(c, violations));
            }
        });

        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"{name}: {cases.Count} cases (seed {FuzzSettings.Seed}) in {clock.Elapsed.TotalSeconds:F1} s; {failures.Count} failed.");
        if (failures.IsEmpty)
        {
            return;
        }

        Assert.Fail(await ReportAsync(name, [.. failures.OrderBy(f => f.Case.Index)], check, cases.Count));
    }

    /// <summary>Groups failures by (path, kind), shrinks the first of each group and describes them.</summary>
    private static async Task<string> ReportAsync(string name, List<FuzzFailure> failures, Func<FuzzTarget, string, Task<List<FuzzViolation>>> check, int total)
    {
        var groups = failures
            .SelectMany(f => f.Violations.Select(v => (Failure: f, Violation: v)))
            .GroupBy(x => (x.Failure.Case.Target.Route, x.Violation.Key, x.Failure.Case.Body.Kind))
            .OrderByDescending(g => g.Count())
            .ToList();
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"{name}: {failures.Count} of {total} generated bodies broke a property (seed {FuzzSettings.Seed}), in {groups.Count} groups.");
        report.AppendLine("Properties: never a 5xx (the safety net's 500 included), every non-2xx in the Bifrost error shape, the same answer (status class + error code) sync, x-bf-async and v1/async.");
        var shrunk = 0;
        foreach (var group in groups)
        {
            var (failure, violation) = group.First();
            var c = failure.Case;
            report.AppendLine();
            report.AppendLine(CultureInfo.InvariantCulture, $"== [{c.Target.Route}, {c.Target.Path}] {violation.Key}, from mutations of kind {c.Body.Kind} — {group.Count()} cases");
            report.AppendLine(CultureInfo.InvariantCulture, $"   e.g. case {c.Index}: {c.Body} ({FuzzSettings.Replay(c.Index)})");
            report.AppendLine("   " + violation.Detail.Replace("\n", "\n   ", StringComparison.Ordinal));
            var others = group.Skip(1).Select(x => x.Failure.Case.Body.ToString()).Distinct().Take(5).ToList();
            if (others.Count > 0)
            {
                report.AppendLine("   also: " + string.Join("; ", others));
            }

            var body = c.Body.Text;
            if (shrunk++ < MaxShrunk)
            {
                body = await ShrinkAsync(c, violation, check);
                report.AppendLine("   shrunk body: " + body);
            }
            else
            {
                report.AppendLine("   body: " + FuzzOracle.Excerpt(body));
            }
        }

        return report.ToString();
    }

    /// <summary>
    /// Removes properties and array elements of the failing body, one at a time, keeping each removal after which the same
    /// violation (same path and kind) still shows. What is left is a small body that still breaks the property.
    /// </summary>
    public static async Task<string> ShrinkAsync(FuzzCase failing, FuzzViolation violation, Func<FuzzTarget, string, Task<List<FuzzViolation>>> check)
    {
        var tree = failing.Body.Tree.DeepClone();
        var raws = failing.Body.Raws;
        var attempts = 0;
        var clock = Stopwatch.StartNew();
        bool changed;
        do
        {
            changed = false;
            foreach (var (container, key, index) in Entries(tree))
            {
                if (attempts++ > 150 || clock.Elapsed > TimeSpan.FromSeconds(20))
                {
                    return JsonMutation.Serialize(tree, raws);
                }

                if (!Detach(container, key, index, out var value, out var position))
                {
                    continue;
                }

                var violations = await check(failing.Target, JsonMutation.Serialize(tree, raws));
                if (violations.Any(v => v.Key == violation.Key))
                {
                    changed = true;
                    break; // the tree changed: enumerate again
                }

                Reattach(container, key, position, value);
            }
        }
        while (changed);

        return JsonMutation.Serialize(tree, raws);
    }

    /// <summary>Every (container, key or index) entry of the tree, outermost first.</summary>
    private static List<(JsonNode Container, string? Key, int Index)> Entries(JsonNode root)
    {
        var list = new List<(JsonNode, string?, int)>();
        var queue = new Queue<JsonNode>();
        queue.Enqueue(root);
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            if (node is JsonObject obj)
            {
                foreach (var (key, child) in obj.ToList())
                {
                    list.Add((obj, key, -1));
                    if (child is not null)
                    {
                        queue.Enqueue(child);
                    }
                }
            }
            else if (node is JsonArray array)
            {
                for (var i = array.Count - 1; i >= 0; i--)
                {
                    list.Add((array, null, i));
                    if (array[i] is { } child)
                    {
                        queue.Enqueue(child);
                    }
                }
            }
        }

        return list;
    }

    private static bool Detach(JsonNode container, string? key, int index, out JsonNode? value, out int position)
    {
        value = null;
        position = -1;
        if (container is JsonObject obj && key is not null && obj.ContainsKey(key))
        {
            position = obj.IndexOf(key);
            value = obj[key];
            obj.Remove(key);
            return true;
        }

        if (container is JsonArray array && index < array.Count)
        {
            position = index;
            value = array[index];
            array.RemoveAt(index);
            return true;
        }

        return false;
    }

    private static void Reattach(JsonNode container, string? key, int position, JsonNode? value)
    {
        if (container is JsonObject obj)
        {
            obj.Insert(position, key!, value);
        }
        else
        {
            ((JsonArray)container).Insert(position, value);
        }
    }
}
