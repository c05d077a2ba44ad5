using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>
/// The 24 h completion window, with a <see cref="FakeTimeProvider"/> as the host's <see cref="TimeProvider"/>: the job
/// engine (lease renewal, cancel checks, progress saving), the local provider's delays and the batch's expiry timer
/// all run on it. The clock is advanced in steps no longer than the lease's remaining time, so the lease is renewed
/// as in real life rather than lost (a single 24 h jump would expire the lease and test lease loss instead).
/// </summary>
public sealed class BatchExpiryTests
{
    [Fact]
    public async Task Lines_not_run_when_the_window_ends_are_reported_as_batch_expired()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2025-03-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = await StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.LeaseDuration = TimeSpan.FromHours(1);
                o.Jobs.PollInterval = TimeSpan.FromMinutes(10);
                // Each line runs an hour, above the default per-line deadline. The test moves the clock whatever the worker is
                // doing, so a line whose delay starts late (a busy machine) has run longer on the clock than its hour: the deadline
                // is far above it, or such a line would end with job_timeout instead of its answer.
                o.Jobs.MaxRunDuration = TimeSpan.FromHours(30);
                o.Batches.ProgressInterval = TimeSpan.FromMinutes(10);
                o.Batches.Concurrency = 1;
            },
            services: s => s.AddSingleton<TimeProvider>(clock));
        const int Total = 40;
        var ids = Enumerable.Range(1, Total).Select(i => $"hour-{i:D2}").ToList();

        // Each line takes one (fake) hour: about 24 of them fit in the window.
        var created = await host.StartBatchAsync(ids.Select(id => BatchLines.Chat(id, metadata: [("local_delay_ms", "3600000")])));
        var id = created.GetProperty("id").GetString()!;
        var expiresAt = created.GetProperty("expires_at").GetInt64();
        Assert.Equal(clock.GetUtcNow().AddHours(24).ToUnixTimeSeconds(), expiresAt);

        var store = host.Services.GetRequiredService<IJobStore>();
        var deadline = DateTime.UtcNow + Deadline;
        var sawInProgress = false;
        JsonElement batch;
        while (true)
        {
            batch = await host.GetBatchAsync(id);
            if (IsTerminal(batch))
            {
                break;
            }

            sawInProgress |= batch.GetProperty("status").GetString() == "in_progress" && batch.GetProperty("request_counts").GetProperty("completed").GetInt32() > 0;
            Assert.True(DateTime.UtcNow < deadline, $"the batch did not end in time; last: {batch}");
            var job = await store.GetAsync(id, Ct);
            var slack = job?.LeaseExpiresAt is { } leaseEnd ? leaseEnd - clock.GetUtcNow() : TimeSpan.MaxValue;
            if (slack >= TimeSpan.FromMinutes(30))
            {
                clock.Advance(TimeSpan.FromMinutes(10));
            }
            else
            {
                // Let the worker renew its lease (it does on its next tick), moving time only a little meanwhile.
                await Task.Delay(10, Ct);
                clock.Advance(TimeSpan.FromMinutes(1));
            }

            await Task.Delay(2, Ct);
        }

        Assert.Equal("expired", batch.GetProperty("status").GetString());
        Assert.True(sawInProgress, "the batch made progress before it expired");
        Assert.True(batch.GetProperty("expired_at").GetInt64() >= expiresAt, $"expired_at before the window ended: {batch}");
        Assert.Equal(JsonValueKind.Null, batch.GetProperty("completed_at").ValueKind);
        BatchLines.AssertCountsAddUp(batch, Total);
        var counts = batch.GetProperty("request_counts");
        var succeeded = counts.GetProperty("succeeded").GetInt32();
        var expired = counts.GetProperty("expired").GetInt32();
        Assert.InRange(succeeded, 15, 25); // ~1 line per hour for 24 hours
        Assert.True(Total - succeeded == expired, $"every line either ran or expired (none failed): {batch}");

        var (output, errors) = await host.ResultsAsync(batch);
        BatchLines.AssertExactlyOnce(ids, output, errors);
        Assert.Equal(succeeded, output.Count);
        Assert.All(errors, line =>
        {
            Assert.Equal(JsonValueKind.Null, line.GetProperty("response").ValueKind);
            Assert.Equal("batch_expired", line.GetProperty("error").GetProperty("code").GetString());
        });

        // The lines that ran are the first ones of the input; the expired ones are the rest.
        Assert.Equal(ids.Take(succeeded), output.Select(BatchLines.CustomId).Order(StringComparer.Ordinal));

        // The lease was never lost on the way: one claim.
        Assert.Equal(1, (await store.GetAsync(id, Ct))!.Version);
    }
}
