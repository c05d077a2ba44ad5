using System.Text;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>
/// The batch handler's line writer: lines handed over while a write is in flight go together into the next write
/// (one <see cref="IAppendableFile.AppendLinesAsync"/>), in the order they were handed over; a call returns only once its
/// line was written; a failed write fails its calls and those queued behind it, and the next call starts afresh.
/// </summary>
public sealed class GroupedLineAppenderTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Lines_handed_over_during_a_write_go_together_into_the_next_write_in_order()
    {
        var file = new GatedFile();
        var appender = new GroupedLineAppender(file);

        var first = appender.AppendAsync(Line("a"), Ct);
        await file.WriteEntered.Task.WaitAsync(Ct); // the first write is in flight
        var second = appender.AppendAsync(Line("b"), Ct);
        var third = appender.AppendAsync([Line("c1"), Line("c2")], Ct);
        var fourth = appender.AppendAsync(Line("d"), Ct);
        Assert.False(second.IsCompleted); // not written yet: the call waits for its line
        Assert.False(first.IsCompleted);

        file.Release.SetResult();
        await Task.WhenAll(first, second, third, fourth).WaitAsync(Ct);

        Assert.Equal(["a"], file.Writes[0]);
        Assert.Equal(["b", "c1", "c2", "d"], file.Writes[1]);
        Assert.Equal(2, file.Writes.Count);
        Assert.Equal(2, appender.Writes);
        Assert.Equal("a\nb\nc1\nc2\nd\n", file.Content);
    }

    [Fact]
    public async Task A_write_holds_at_most_MaxLinesPerWrite_lines()
    {
        var file = new GatedFile();
        var appender = new GroupedLineAppender(file);
        var first = appender.AppendAsync(Line("x"), Ct);
        await file.WriteEntered.Task.WaitAsync(Ct);
        var rest = Enumerable.Range(0, GroupedLineAppender.MaxLinesPerWrite + 10).Select(i => appender.AppendAsync(Line($"l{i}"), Ct)).ToList();

        file.Release.SetResult();
        await Task.WhenAll([first, .. rest]).WaitAsync(Ct);

        Assert.Equal([1, GroupedLineAppender.MaxLinesPerWrite, 10], file.Writes.Select(w => w.Count));
        Assert.Equal(string.Concat(new[] { "x" }.Concat(Enumerable.Range(0, GroupedLineAppender.MaxLinesPerWrite + 10).Select(i => $"l{i}")).Select(l => l + "\n")), file.Content);
    }

    [Fact]
    public async Task A_failed_write_fails_its_calls_and_those_queued_and_the_next_call_starts_afresh()
    {
        var file = new GatedFile { FailFirst = true };
        var appender = new GroupedLineAppender(file);
        var first = appender.AppendAsync(Line("a"), Ct);
        await file.WriteEntered.Task.WaitAsync(Ct);
        var queued = appender.AppendAsync(Line("b"), Ct);

        file.Release.SetResult();
        await Assert.ThrowsAsync<IOException>(() => first);
        await Assert.ThrowsAsync<IOException>(() => queued);
        Assert.Equal("", file.Content); // neither line was written

        await appender.AppendAsync(Line("c"), Ct);
        Assert.Equal("c\n", file.Content);
    }

    private static ReadOnlyMemory<byte> Line(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>An appendable file whose first write waits for <see cref="Release"/>; records each write's lines.</summary>
    private sealed class GatedFile : IAppendableFile
    {
        private readonly StringBuilder _content = new();
        private int _calls;

        public TaskCompletionSource WriteEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool FailFirst { get; init; }

        public List<List<string>> Writes { get; } = [];

        public string Content
        {
            get
            {
                lock (_content)
                {
                    return _content.ToString();
                }
            }
        }

        public string Id => "file-test";

        public long Length => Content.Length;

        public ValueTask<Stream> OpenReadAsync(CancellationToken cancellationToken) => ValueTask.FromResult<Stream>(new MemoryStream(Encoding.UTF8.GetBytes(Content)));

        public ValueTask AppendLineAsync(ReadOnlyMemory<byte> line, CancellationToken cancellationToken) => WriteAsync([line]);

        public ValueTask AppendLinesAsync(IReadOnlyList<ReadOnlyMemory<byte>> lines, CancellationToken cancellationToken) => WriteAsync(lines);

        public ValueTask<StoredFile> CommitAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private async ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> lines)
        {
            if (Interlocked.Increment(ref _calls) == 1)
            {
                WriteEntered.SetResult();
                await Release.Task.ConfigureAwait(false);
                if (FailFirst)
                {
                    throw new IOException("disk full");
                }
            }

            var texts = lines.Select(l => Encoding.UTF8.GetString(l.Span)).ToList();
            lock (_content)
            {
                Writes.Add(texts);
                foreach (var text in texts)
                {
                    _content.Append(text).Append('\n');
                }
            }
        }
    }
}
