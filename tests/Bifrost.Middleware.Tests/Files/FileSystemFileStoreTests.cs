using System.Text;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Files;

/// <summary>The file-system store directly: append files (crash recovery by cutting a partial last line), visibility, limits.</summary>
public sealed class FileSystemFileStoreTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FileSystemFileStore _store;

    public FileSystemFileStoreTests()
    {
        _store = new FileSystemFileStore(_directory.Path, TimeProvider.System);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    private static NewFile Output(string id = "file-out") => new() { Id = id, Filename = "out.jsonl", Purpose = "batch_output", Owner = "owner-1" };

    private string DataPath(string id) => Path.Combine(_directory.Path, id + ".data");

    private static async Task<string> ReadAllAsync(IAppendableFile file)
    {
        await using var stream = await file.OpenReadAsync(Ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return await reader.ReadToEndAsync(Ct);
    }

    [Theory]
    [InlineData("a\nb\npartial", "a\nb\n")]
    [InlineData("a\nb\n", "a\nb\n")]
    [InlineData("no newline at all", "")]
    [InlineData("\n", "\n")]
    [InlineData("", "")]
    public async Task OpenAppend_cuts_a_partial_last_line_left_by_a_crash(string before, string after)
    {
        await File.WriteAllTextAsync(DataPath("file-out"), before, Ct);

        await using (var file = await _store.OpenAppendAsync(Output(), Ct))
        {
            Assert.Equal(after.Length, file.Length);
            Assert.Equal(after, await ReadAllAsync(file));
            await file.AppendLineAsync("""{"custom_id":"x"}"""u8.ToArray(), Ct);
            Assert.Equal(after + "{\"custom_id\":\"x\"}\n", await ReadAllAsync(file));
        }

        Assert.Equal(after + "{\"custom_id\":\"x\"}\n", await File.ReadAllTextAsync(DataPath("file-out"), Ct));
    }

    [Theory]
    [InlineData(4094)]
    [InlineData(4095)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(8191)]
    [InlineData(8192)]
    [InlineData(20_000)]
    public async Task OpenAppend_finds_the_last_newline_across_its_read_buffer(int partialLength)
    {
        // Whole lines, then a partial line longer than (or at the edge of) the 4 KiB backwards scan buffer.
        var whole = "{\"custom_id\":\"1\"}\n" + new string('y', 5000) + "\n";
        await File.WriteAllTextAsync(DataPath("file-out"), whole + new string('x', partialLength), Ct);

        await using var file = await _store.OpenAppendAsync(Output(), Ct);

        Assert.Equal(whole.Length, file.Length);
        Assert.Equal(whole, await ReadAllAsync(file));
    }

    [Fact]
    public async Task An_append_file_is_invisible_until_committed_and_can_be_reopened_after_a_restart()
    {
        await using (var file = await _store.OpenAppendAsync(Output(), Ct))
        {
            await file.AppendLineAsync("line-1"u8.ToArray(), Ct);
            Assert.Null(await _store.GetAsync("file-out", Ct));
            Assert.Null(await _store.OpenReadAsync("file-out", Ct));
            Assert.Empty(await _store.ListAsync("owner-1", null, 10, null, ascending: true, Ct));
        }

        // A restart: the same id reopens and keeps the earlier lines.
        await using (var file = await _store.OpenAppendAsync(Output(), Ct))
        {
            Assert.Equal("line-1\n", await ReadAllAsync(file));
            await file.AppendLineAsync("line-2"u8.ToArray(), Ct);
            var stored = await file.CommitAsync(Ct);
            Assert.Equal(14, stored.Bytes);
        }

        var meta = await _store.GetAsync("file-out", Ct);
        Assert.NotNull(meta);
        Assert.Equal((14L, "out.jsonl", "batch_output", "owner-1"), (meta.Bytes, meta.Filename, meta.Purpose, meta.Owner));
        await using var content = await _store.OpenReadAsync("file-out", Ct);
        Assert.Equal("line-1\nline-2\n", await new StreamReader(content!).ReadToEndAsync(Ct));
        Assert.Single(await _store.ListAsync("owner-1", "batch_output", 10, null, ascending: true, Ct));
        Assert.Empty(await _store.ListAsync("owner-2", null, 10, null, ascending: true, Ct));
    }

    [Fact]
    public async Task Save_over_the_limit_throws_413_and_leaves_nothing()
    {
        using var content = new MemoryStream(new byte[1001]);
        var ex = await Assert.ThrowsAsync<BifrostException>(() =>
            _store.SaveAsync(new NewFile { Id = "file-big", Filename = "big", Purpose = "user_data", Owner = "o" }, content, 1000, Ct).AsTask());
        Assert.Equal(413, ex.StatusCode);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_directory.Path));
        Assert.Null(await _store.GetAsync("file-big", Ct));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData("file.meta")]
    public async Task Ids_that_are_not_plain_names_are_never_found(string id)
    {
        Assert.Null(await _store.GetAsync(id, Ct));
        Assert.Null(await _store.OpenReadAsync(id, Ct));
        Assert.False(await _store.DeleteAsync(id, Ct));
    }
}
