using System.Globalization;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// A budget's reset period: <c>N</c> units of <c>m</c> (minute), <c>h</c>, <c>d</c>, <c>w</c>, <c>M</c> (calendar month —
/// case matters: <c>m</c> is a minute), <c>Y</c> (calendar year), e.g. <c>1d</c>, <c>6h</c>, <c>1M</c>; <see cref="Lifetime"/>
/// when none is set. Every instance computes the same window for the same time (no per-process anchor):
/// minutes, hours and days are counted from the Unix epoch (a UTC midnight, so <c>1h</c> starts on the hour and
/// <c>1d</c> at midnight); weeks from the epoch (a Thursday), or from Monday 00:00 UTC when calendar-aligned; months and
/// years are always calendar months and years (from January 1970 for multiples).
/// </summary>
internal readonly record struct GovernancePeriod(int Count, char Unit)
{
    private static readonly DateTimeOffset Epoch = DateTimeOffset.UnixEpoch;
    private static readonly DateTimeOffset FirstMonday = new(1970, 1, 5, 0, 0, 0, TimeSpan.Zero);

    /// <summary>No reset: one window from <see cref="DateTimeOffset.MinValue"/> to <see cref="DateTimeOffset.MaxValue"/>.</summary>
    public static GovernancePeriod Lifetime => default;

    public bool IsLifetime => Count == 0;

    /// <summary>Parses a budget's <c>Reset</c> (null or blank: lifetime).</summary>
    public static bool TryParse(string? value, out GovernancePeriod period)
    {
        period = Lifetime;
        if (string.IsNullOrWhiteSpace(value))
        {
            return true;
        }

        value = value.Trim();
        var unit = value[^1];
        if (unit is not ('m' or 'h' or 'd' or 'w' or 'M' or 'Y')
            || !int.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var count)
            || count <= 0 || count > 10_000)
        {
            return false;
        }

        period = new GovernancePeriod(count, unit);
        return true;
    }

    /// <summary>The window holding <paramref name="now"/>.</summary>
    public (DateTimeOffset Start, DateTimeOffset End) WindowAt(DateTimeOffset now, bool calendarAligned)
    {
        now = now.ToUniversalTime();
        switch (Unit)
        {
            case 'm':
                return Fixed(now, TimeSpan.FromMinutes(Count), Epoch);
            case 'h':
                return Fixed(now, TimeSpan.FromHours(Count), Epoch);
            case 'd':
                return Fixed(now, TimeSpan.FromDays(Count), Epoch);
            case 'w':
                return Fixed(now, TimeSpan.FromDays(7 * Count), calendarAligned ? FirstMonday : Epoch);
            case 'M':
                {
                    var months = (((now.Year - 1970) * 12) + now.Month - 1) / Count * Count;
                    var start = new DateTimeOffset(1970 + (months / 12), (months % 12) + 1, 1, 0, 0, 0, TimeSpan.Zero);
                    return (start, start.AddMonths(Count));
                }

            case 'Y':
                {
                    var years = (now.Year - 1970) / Count * Count;
                    var start = new DateTimeOffset(1970 + years, 1, 1, 0, 0, 0, TimeSpan.Zero);
                    return (start, start.AddYears(Count));
                }

            default:
                return (DateTimeOffset.MinValue, DateTimeOffset.MaxValue);
        }
    }

    /// <summary>The fixed window of <paramref name="length"/> holding <paramref name="now"/>, counted from <paramref name="anchor"/>.</summary>
    public static (DateTimeOffset Start, DateTimeOffset End) Fixed(DateTimeOffset now, TimeSpan length, DateTimeOffset anchor)
    {
        var elapsed = now.UtcTicks - anchor.UtcTicks;
        var index = elapsed >= 0 ? elapsed / length.Ticks : ((elapsed + 1) / length.Ticks) - 1;
        var start = new DateTimeOffset(anchor.UtcTicks + (index * length.Ticks), TimeSpan.Zero);
        return (start, start + length);
    }

    /// <summary>The epoch-anchored window of a rate limit's period, the same on every instance.</summary>
    public static (DateTimeOffset Start, DateTimeOffset End) RateWindowAt(DateTimeOffset now, TimeSpan period) => Fixed(now, period, Epoch);

    public override string ToString() => IsLifetime ? "lifetime" : Count.ToString(CultureInfo.InvariantCulture) + Unit;
}
