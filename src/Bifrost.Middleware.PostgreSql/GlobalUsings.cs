global using Microsoft.Extensions.DependencyInjection;
global using Bifrost.Middleware.Files;
global using Bifrost.Middleware.Jobs;
