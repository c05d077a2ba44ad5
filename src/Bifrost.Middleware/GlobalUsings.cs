global using Microsoft.Extensions.DependencyInjection;
global using Bifrost.Middleware.OpenAI;
