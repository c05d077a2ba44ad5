using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// Keeps <see cref="VirtualKeyStore"/>'s snapshot in step with the <see cref="IGovernanceStore"/>: loads the store's keys,
/// teams and customers at start (before the host serves requests), then every <see cref="GovernanceOptions.RefreshInterval"/>
/// reloads them when the store's revision moved (a change made on any instance), and at once after a change through this
/// instance's admin API (<see cref="RefreshAsync"/>). Does nothing periodically when governance is Off. A store that
/// fails is logged and tried again at the next interval; the previous snapshot (at least configuration) stays in force.
/// </summary>
internal sealed partial class GovernanceSnapshotRefresher(
    IGovernanceStore store,
    VirtualKeyStore keys,
    IOptions<BifrostOptions> options,
    TimeProvider time,
    ILogger<GovernanceSnapshotRefresher> logger) : BackgroundService
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (keys.Mode != GovernanceMode.Off)
        {
            await TryRefreshAsync(cancellationToken).ConfigureAwait(false);
        }

        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (keys.Mode == GovernanceMode.Off)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.Governance.RefreshInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            await TryRefreshAsync(stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task TryRefreshAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RefreshAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogRefreshFailed(logger, ex);
        }
    }

    /// <summary>Reloads the snapshot when the store's revision differs from the snapshot's.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var revision = await store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
            if (revision == keys.Revision)
            {
                return;
            }

            var entities = await store.ListEntitiesAsync(cancellationToken).ConfigureAwait(false);
            var virtualKeys = new List<(VirtualKeyOptions, string)>();
            var teams = new List<GovernanceGroupOptions>();
            var customers = new List<GovernanceGroupOptions>();
            foreach (var entity in entities)
            {
                try
                {
                    switch (entity.Kind)
                    {
                        case GovernanceEntityKind.VirtualKey when GovernanceDefinitions.ReadKey(entity) is { ValueHash: { Length: 64 } hash } key:
                            _ = new VirtualKey(key, hash); // one bad document must not keep every other key from loading
                            virtualKeys.Add((key, hash));
                            break;
                        case GovernanceEntityKind.VirtualKey:
                            LogBadEntity(logger, entity.Kind, entity.Id, "it has no value_hash");
                            break;
                        case GovernanceEntityKind.Team:
                            teams.Add(GovernanceDefinitions.ReadGroup(entity));
                            break;
                        case GovernanceEntityKind.Customer:
                            customers.Add(GovernanceDefinitions.ReadGroup(entity));
                            break;
                    }
                }
                catch (Exception ex) when (ex is JsonException or ArgumentException or NullReferenceException or InvalidOperationException)
                {
                    LogBadEntity(logger, entity.Kind, entity.Id, ex.Message);
                }
            }

            keys.Apply(revision, virtualKeys, teams, customers);
        }
        finally
        {
            _gate.Release();
        }
    }

    public override void Dispose()
    {
        _gate.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 800, Level = LogLevel.Warning, Message = "Could not load virtual keys, teams and customers from the governance store; the previous ones stay in force and the load is tried again at the next refresh interval.")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 801, Level = LogLevel.Warning, Message = "The governance store's {Kind} '{Id}' is ignored: {Reason}.")]
    private static partial void LogBadEntity(ILogger logger, GovernanceEntityKind kind, string id, string reason);
}
