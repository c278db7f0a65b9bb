# Multi-stage: a base stage sets NVIDIA_VISIBLE_DEVICES=all itself and the final stage builds
# on it, so the final image exposes every GPU whatever the registry holds: GG109, definite.
FROM ubuntu:22.04 AS gpu-base
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM gpu-base AS build
RUN echo build > /artifact

FROM gpu-base
COPY --from=build /artifact /artifact
CMD ["cat", "/artifact"]
