using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Diagnostics;

/// <summary>README "Metrics and health checks" lists every instrument of the meter <c>Bifrost.Middleware</c> with its unit and type.</summary>
public sealed partial class MetricsReadmeTests
{
    [Fact]
    public async Task The_readme_table_lists_every_instrument_of_the_meter_with_its_unit_and_type()
    {
        await using var host = await GatewayHost.StartAsync(static o => o.Cache.Enabled = true); // the response cache's counter too
        using (var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", TestContext.Current.CancellationToken))
        {
            Assert.True(response.IsSuccessStatusCode); // the pipeline (and its instruments) exists once a call went through
        }

        var factory = host.Services.GetRequiredService<IMeterFactory>();
        var instruments = new List<Instrument>();
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == "Bifrost.Middleware" && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    lock (instruments)
                    {
                        instruments.Add(instrument);
                    }
                }
            };
            listener.Start();
        }

        var rows = Rows();
        Assert.True(instruments.Count >= 12, $"only {instruments.Count} instruments: {string.Join(", ", instruments.Select(i => i.Name))}");
        foreach (var instrument in instruments)
        {
            Assert.True(rows.TryGetValue(instrument.Name, out var row), $"README's metrics table has no row for {instrument.Name}");
            Assert.Equal(instrument.Unit, row.Unit);
            Assert.Equal(TypeOf(instrument), row.Type);
        }
    }

    private static string TypeOf(Instrument instrument)
    {
        var type = instrument.GetType().GetGenericTypeDefinition();
        return type == typeof(Counter<>) ? "counter"
            : type == typeof(Histogram<>) ? "histogram"
            : type == typeof(UpDownCounter<>) ? "up-down counter"
            : type == typeof(Gauge<>) ? "gauge"
            : type == typeof(ObservableGauge<>) ? "observable gauge"
            : type == typeof(ObservableCounter<>) ? "observable counter"
            : type == typeof(ObservableUpDownCounter<>) ? "observable up-down counter"
            : type.Name;
    }

    /// <summary>The rows of the table under "### Metrics and health checks": name → (type, unit).</summary>
    private static Dictionary<string, (string Type, string Unit)> Rows()
    {
        var readme = File.ReadAllText(Repository.PathOf("README.md")).ReplaceLineEndings("\n");
        var start = readme.IndexOf("### Metrics and health checks\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README has no section 'Metrics and health checks'");
        var table = readme.IndexOf("| name |", start, StringComparison.Ordinal);
        Assert.True(table >= 0, "the section has no table");
        var end = readme.IndexOf("\n\n", table, StringComparison.Ordinal);
        var rows = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (Match match in Row().Matches(readme[table..end]))
        {
            Assert.True(rows.TryAdd(match.Groups["name"].Value, (match.Groups["type"].Value.Trim(), match.Groups["unit"].Value)), $"two rows for {match.Groups["name"].Value}");
        }

        return rows;
    }

    [GeneratedRegex(@"^\| `(?<name>[a-z_.]+)` \| (?<type>[a-z -]+) \| `(?<unit>[^`]+)` \|", RegexOptions.Multiline)]
    private static partial Regex Row();
}
