using System.Globalization;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Bifrost.Middleware.Endpoints;

/// <summary>The OpenAI files API: multipart upload streamed to the <see cref="IFileStore"/>, list, get, content, delete.</summary>
internal static class FileEndpoints
{
    internal static readonly string[] Purposes = ["batch", "batch_output", "user_data", "assistants", "vision", "fine-tune", "evals"];

    public static Task UploadAsync(HttpContext context) => RunAsync(async () =>
    {
        var options = context.RequestServices.GetRequiredService<IOptions<BifrostOptions>>().Value.Files;
        var store = context.RequestServices.GetRequiredService<IFileStore>();
        var owner = Governance.GovernanceCaller.OwnerOf(context);
        var cancellationToken = context.RequestAborted;

        var quota = await FileUploadQuota.ReserveAsync(store, context.RequestServices.GetRequiredService<AsyncJobService>(), options, owner, cancellationToken).ConfigureAwait(false);
        var metrics = context.RequestServices.GetRequiredService<Diagnostics.OperationalMetrics>();
        async Task<StoredFile> SaveAsync(NewFile file, Stream content)
        {
            var stored = await quota.SaveAsync(file, content, cancellationToken).ConfigureAwait(false);
            metrics.FileStored(stored.Purpose, stored.Bytes);
            return stored;
        }

        var reader = new MultipartReader(MultipartUpload.Boundary(context.Request.ContentType), context.Request.Body)
        {
            HeadersCountLimit = MultipartUpload.MaxHeadersPerPart,
            HeadersLengthLimit = MultipartUpload.MaxHeaderBytesPerPart,
        };
        string? purpose = null;
        string? filename = null;
        StoredFile? saved = null;
        FileStream? spooled = null;
        var parts = 0;
        var id = "file-" + Guid.CreateVersion7().ToString("N");
        try
        {
            MultipartSection? section;
            while ((section = await MultipartUpload.NextSectionAsync(reader, cancellationToken).ConfigureAwait(false)) is not null)
            {
                if (++parts > MultipartUpload.MaxParts)
                {
                    throw MultipartUpload.Invalid($"The upload has more than {MultipartUpload.MaxParts} parts; only 'file' and 'purpose' are expected.", null);
                }

                var disposition = ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var parsed) ? parsed : null;
                var name = disposition is null ? null : HeaderUtilities.RemoveQuotes(disposition.Name).Value;
                var body = new MultipartSectionStream(section.Body);
                if (name == "file")
                {
                    if (saved is not null || spooled is not null)
                    {
                        throw BadRequest("Only one 'file' part is allowed.", "file");
                    }

                    filename = MultipartUpload.Filename(disposition!);
                    if (purpose is not null)
                    {
                        saved = await SaveAsync(new NewFile { Id = id, Filename = filename, Purpose = purpose, Owner = owner }, body).ConfigureAwait(false);
                    }
                    else
                    {
                        // The purpose comes after the file: spool to a temporary file (never to memory) until we know it.
                        spooled = TempFiles.Create();
                        await LimitedCopy.CopyAsync(body, spooled, options.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
                    }

                    continue;
                }

                // Every other part is a small text field, read with a bound (never whole, whatever its size).
                var value = await MultipartUpload.ReadFieldAsync(body, name, cancellationToken).ConfigureAwait(false);
                if (name != "purpose")
                {
                    continue; // unknown fields (e.g. an SDK's expires_after[...]) are ignored
                }

                var trimmed = value.Trim();
                if (purpose is not null)
                {
                    if (purpose != trimmed)
                    {
                        throw BadRequest($"'purpose' is given more than once with different values ('{purpose}', '{MultipartUpload.Shorten(trimmed)}').", "purpose");
                    }

                    continue;
                }

                if (Array.IndexOf(Purposes, trimmed) < 0)
                {
                    throw BadRequest($"'purpose' must be one of: {string.Join(", ", Purposes)}.", "purpose");
                }

                purpose = trimmed;
            }

            if (purpose is null)
            {
                throw BadRequest("'purpose' is required.", "purpose");
            }

            if (saved is null && spooled is null)
            {
                throw BadRequest("'file' is required.", "file");
            }

            if (spooled is not null)
            {
                spooled.Position = 0;
                saved = await SaveAsync(new NewFile { Id = id, Filename = filename!, Purpose = purpose, Owner = owner }, spooled).ConfigureAwait(false);
            }

            if (purpose == "batch")
            {
                await ValidateBatchFileAsync(store, saved!, options, context.RequestServices.GetRequiredService<Operations.OperationRegistry>().BatchUrls, cancellationToken).ConfigureAwait(false);
            }

            await BifrostResults.WriteJsonAsync(context, new FileObject(saved!), BifrostJson.Context.FileObject).ConfigureAwait(false);
        }
        catch
        {
            if (saved is not null)
            {
                await store.DeleteAsync(saved.Id, CancellationToken.None).ConfigureAwait(false);
            }

            throw;
        }
        finally
        {
            if (spooled is not null)
            {
                await spooled.DisposeAsync().ConfigureAwait(false);
            }
        }
    });

    public static Task ListAsync(HttpContext context) => context.Request.Path.Value?.EndsWith('/') == true
        ? BatchEndpoints.MissingIdAsync(context, "file_retrieve", "file_id")
        : RunAsync(async () =>
    {
        var store = context.RequestServices.GetRequiredService<IFileStore>();
        var owner = Governance.GovernanceCaller.OwnerOf(context);
        var query = context.Request.Query;
        var limit = ParseLimit(query["limit"], 10_000, 10_000);
        var order = query["order"].ToString();
        if (order.Length > 0 && order is not ("asc" or "desc"))
        {
            throw BadRequest("'order' must be 'asc' or 'desc'.", "order");
        }

        var purpose = query["purpose"].ToString();
        var after = query["after"].ToString();
        var files = await store.ListAsync(owner, purpose.Length == 0 ? null : purpose, limit + 1, after.Length == 0 ? null : after, order == "asc", context.RequestAborted).ConfigureAwait(false);
        var page = files.Take(limit).Select(static f => new FileObject(f)).ToList();
        var response = new FileListResponse { Data = page, HasMore = files.Count > limit, FirstId = page.FirstOrDefault()?.Id, LastId = page.LastOrDefault()?.Id };
        await BifrostResults.WriteJsonAsync(context, response, BifrostJson.Context.FileListResponse).ConfigureAwait(false);
    });

    public static Task GetAsync(HttpContext context) => RunAsync(async () =>
    {
        var file = await FindAsync(context).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, new FileObject(file), BifrostJson.Context.FileObject).ConfigureAwait(false);
    });

    public static Task ContentAsync(HttpContext context) => RunAsync(async () =>
    {
        var file = await FindAsync(context).ConfigureAwait(false);
        var store = context.RequestServices.GetRequiredService<IFileStore>();
        await using var content = await store.OpenReadAsync(file.Id, context.RequestAborted).ConfigureAwait(false)
            ?? throw NotFound(file.Id);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength = file.Bytes;
        context.Response.Headers.ContentDisposition = new ContentDispositionHeaderValue("attachment") { FileNameStar = file.Filename }.ToString();
        await content.CopyToAsync(context.Response.Body, 81920, context.RequestAborted).ConfigureAwait(false);
    });

    public static Task DeleteAsync(HttpContext context) => RunAsync(async () =>
    {
        var file = await FindAsync(context).ConfigureAwait(false);
        var store = context.RequestServices.GetRequiredService<IFileStore>();
        if (file.Purpose == "batch")
        {
            var owner = Governance.GovernanceCaller.OwnerOf(context);
            await context.RequestServices.GetRequiredService<Bifrost.Middleware.Batches.BatchService>().EnsureNotInputOfRunningBatchAsync(owner, file.Id, context.RequestAborted).ConfigureAwait(false);
        }

        var deleted = await store.DeleteAsync(file.Id, context.RequestAborted).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, new FileDeletedResponse { Id = file.Id, Deleted = deleted }, BifrostJson.Context.FileDeletedResponse).ConfigureAwait(false);
    });

    /// <summary>The caller's file from the route's <c>file_id</c>, or 404 (unknown and other owners' files look the same).</summary>
    internal static async Task<StoredFile> FindAsync(HttpContext context)
    {
        var id = context.Request.RouteValues["file_id"] as string ?? string.Empty;
        var store = context.RequestServices.GetRequiredService<IFileStore>();
        var owner = Governance.GovernanceCaller.OwnerOf(context);
        var file = await store.GetAsync(id, context.RequestAborted).ConfigureAwait(false);
        return file is not null && file.Owner == owner ? file : throw NotFound(id);
    }

    internal static int ParseLimit(Microsoft.Extensions.Primitives.StringValues value, int defaultLimit, int max)
    {
        if (value.Count == 0 || string.IsNullOrEmpty(value.ToString()))
        {
            return defaultLimit;
        }

        return int.TryParse(value.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit >= 1 && limit <= max
            ? limit
            : throw BadRequest($"'limit' must be an integer from 1 to {max}.", "limit");
    }

    /// <summary>
    /// Runs a files/batches handler (the route's safety net maps the rest and fills the request type): the multipart
    /// reader's format and limit errors become 400/413.
    /// </summary>
    internal static async Task RunAsync(Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (InvalidDataException ex)
        {
            throw MultipartUpload.Malformed(ex);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == 413)
        {
            throw BifrostErrors.TooLarge("file_too_large", ex.Message);
        }
    }

    internal static BifrostException BadRequest(string message, string? param) =>
        BifrostErrors.InvalidRequest("invalid_request", message, param);

    internal static BifrostException NotFound(string id) =>
        BifrostErrors.NotFound("file_not_found", $"No file '{id}'.", "file_id");

    private static async Task ValidateBatchFileAsync(IFileStore store, StoredFile file, FilesOptions options, IReadOnlyList<string> batchUrls, CancellationToken cancellationToken)
    {
        await using var content = await store.OpenReadAsync(file.Id, cancellationToken).ConfigureAwait(false) ?? throw NotFound(file.Id);
        var result = await BatchInputValidator.ValidateAsync(content, options.MaxBatchLines, batchUrls, cancellationToken).ConfigureAwait(false);
        if (result.Errors.Count > 0)
        {
            var details = string.Join("; ", result.Errors.Select(e => e.Line > 0 ? $"line {e.Line}: {e.Message}" : e.Message));
            throw BifrostErrors.InvalidRequest("invalid_batch_file", $"Invalid batch input file: {details}.", "file");
        }
    }
}
