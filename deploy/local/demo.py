#!/usr/bin/env python3
"""Demo data for the local stack, created once on its first start (deploy/local/stack.sh).

Everything goes through the product's own doors: accounts, songs, audio, artwork, likes, plays and
follows through the public API behind the proxy; reviews through the reviews service's legacy
importer (`reviews import`), fed a small dataset in the legacy CSV format about the demo songs.

  * 8 artists (password in accounts.txt), following one another;
  * 3 songs each with real generated audio (ffmpeg: a short synthesised loop in a key and tempo of
    its own) and generated artwork, processed by the player like any upload;
  * a catalogue of 240 more songs (metadata only, "awaiting audio"), so lists page;
  * likes and plays, and 4 rated aspects plus 4–14 reviews on every song with audio.

Only the Python standard library; deterministic (fixed random seed).
"""

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request

PASSWORD = "audiostorm demo"
ARTISTS = [
    ("lunartides", "Lunar Tides"), ("neonharbor", "Neon Harbor"), ("velvetstatic", "Velvet Static"),
    ("emberfox", "Ember Fox"), ("paperorbit", "Paper Orbit"), ("quietcomet", "Quiet Comet"),
    ("mangopulse", "Mango Pulse"), ("hollowwillow", "Hollow Willow"),
]
GENRES = ["Electronic", "Synthwave", "Ambient", "Lo-fi", "House", "Techno", "Indie", "Downtempo"]
WORDS_A = ["Midnight", "Golden", "Electric", "Silent", "Neon", "Broken", "Endless", "Velvet", "Crimson",
           "Distant", "Frozen", "Wild", "Hollow", "Lucid", "Paper", "Restless", "Summer", "Winter"]
WORDS_B = ["Drive", "Tide", "Signal", "Garden", "Echoes", "Skyline", "Rain", "Harbor", "Motel", "Dreams",
           "Circuit", "Avenue", "Lights", "Static", "Waves", "Bloom", "Orbit", "Heat"]
ASPECTS = ["Sound", "Vocals", "Lyrics", "Originality"]
SUMMARIES = ["On repeat all week", "Great late-night track", "Solid production", "Grows on you",
             "Not my favourite", "Instant classic", "Lovely textures", "Could be shorter"]
BODIES = [
    "The low end is warm and the melody sits right on top of it; I keep coming back to the second half.",
    "Nice atmosphere and a clean mix, although the arrangement takes a while to get going for me.",
    "This is exactly what I want on a night drive: steady pulse, soft pads, and nothing in the way.",
    "Good ideas throughout, but the hook repeats a few times too many before the change finally lands.",
    "Crisp drums and a bassline that moves. The breakdown in the middle is the best part of the song.",
]


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, token=None, raw=None, content_type=None, ok=(200, 201, 202, 204)):
        data, headers = None, {}
        if body is not None:
            data, headers["content-type"] = json.dumps(body).encode(), "application/json"
        if raw is not None:
            data, headers["content-type"] = raw, content_type
        if token:
            headers["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                text = res.read()
                status = res.status
        except urllib.error.HTTPError as e:
            text, status = e.read(), e.code
        if status not in ok:
            raise RuntimeError(f"{method} {path}: {status} {text[:300]!r}")
        # Song ids outgrow a double in JavaScript, not in Python: json keeps them exact.
        return json.loads(text) if text else None


def synth(path, seed):
    """A 20–35 s loop: a chord pad, a bass pulse and a hi-hat, in a key and tempo of its own."""
    rng = random.Random(seed)
    root = rng.choice([110.0, 123.47, 130.81, 146.83, 164.81, 174.61, 196.0])
    bpm = rng.choice([84, 96, 110, 120, 124, 128])
    beat = 60.0 / bpm
    third = rng.choice([1.2, 1.25])  # minor or major
    secs = rng.randint(20, 35)
    expr = (
        f"0.22*sin(2*PI*{root}*t)*(0.6+0.4*sin(2*PI*t/{beat * 8}))"
        f"+0.16*sin(2*PI*{root * third}*t)+0.14*sin(2*PI*{root * 1.5}*t)"
        f"+0.30*sin(2*PI*{root / 2}*t)*exp(-6*mod(t,{beat}))"
        f"+0.05*(random(0)-0.5)*exp(-40*mod(t+{beat / 2},{beat / 2}))"
    )
    expr = expr.replace(",", "\\,")  # a bare comma would end the filter in a filtergraph
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"aevalsrc={expr}:s=44100:d={secs}",
         "-af", "afade=t=in:d=1,afade=t=out:st=" + str(secs - 2) + ":d=2",
         "-metadata", f"comment=audiostorm demo {seed}", "-b:a", "160k", path],
        check=True,
    )


def artwork(path, seed):
    rng = random.Random(seed)
    colours = [f"0x{rng.randrange(0x1000000):06x}" for _ in range(3)]
    source = f"gradients=s=600x600:c0={colours[0]}:c1={colours[1]}:c2={colours[2]}:n=3:seed={seed}"
    result = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source,
                             "-frames:v", "1", path])
    if result.returncode != 0:  # an ffmpeg without the gradients source
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"mandelbrot=s=600x600:start_scale={2 + seed % 5}", "-frames:v", "1", path],
                       check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--work", default="data/stack/demo")
    ap.add_argument("--reviews-bin", default="target/release/reviews")
    ap.add_argument("--reviews-database", default="audiostorm_reviews")
    ap.add_argument("--catalogue", type=int, default=240)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    api = Api(args.url)
    rng = random.Random(42)

    print("   accounts", flush=True)
    tokens, ids = {}, {}
    for username, display in ARTISTS:
        api.call("POST", "/auth/signup", {"username": username, "email": f"{username}@audiostorm.test",
                                          "password": PASSWORD, "display_name": display}, ok=(201, 409))
        session = api.call("POST", "/auth/signin", {"login": username, "password": PASSWORD})
        tokens[username], ids[username] = session["access_token"], session["user"]["id"]
    for username, _ in ARTISTS:
        for other, _ in rng.sample(ARTISTS, 4):
            if other != username:
                api.call("PUT", f"/users/me/followings/{ids[other]}", token=tokens[username], ok=(200, 201, 204, 409))

    print("   songs with audio (generated, then processed by the player)", flush=True)
    audio_songs = []
    n = 0
    for username, display in ARTISTS:
        for _ in range(3):
            n += 1
            title = f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)}"
            genre = rng.choice(GENRES)
            song = api.call("POST", "/songs", {
                "title": title, "genre": genre, "tag_list": [genre.lower(), "demo"],
                "description": f"{title} by {display}, made for the AudioStorm demo.",
            }, token=tokens[username])
            mp3, jpg = os.path.join(args.work, f"song-{n}.mp3"), os.path.join(args.work, f"art-{n}.jpg")
            synth(mp3, n)
            artwork(jpg, n)
            with open(jpg, "rb") as f:
                api.call("PUT", f"/songs/{song['id']}/artwork", raw=f.read(), content_type="image/jpeg",
                         token=tokens[username])
            with open(mp3, "rb") as f:
                api.call("POST", f"/songs/{song['id']}/audio", raw=f.read(), content_type="audio/mpeg",
                         token=tokens[username])
            audio_songs.append((song["id"], username))

    print(f"   a catalogue of {args.catalogue} more songs", flush=True)
    for i in range(args.catalogue):
        username, display = ARTISTS[i % len(ARTISTS)]
        genre = rng.choice(GENRES)
        api.call("POST", "/songs", {
            "title": f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)} {i + 1}", "genre": genre,
            "tag_list": [genre.lower()], "description": "From the demo catalogue (no audio yet).",
        }, token=tokens[username])

    print("   waiting for the audio to be processed", flush=True)
    deadline = time.time() + 600
    pending = {song_id for song_id, _ in audio_songs}
    while pending and time.time() < deadline:
        for song_id in list(pending):
            state = api.call("GET", f"/songs/{song_id}").get("state")
            if state in ("ready", "failed"):
                pending.discard(song_id)
        time.sleep(1)
    if pending:
        print(f"   {len(pending)} songs still processing; they will be ready shortly", flush=True)

    print("   likes and plays", flush=True)
    for song_id, owner in audio_songs:
        for username, _ in rng.sample(ARTISTS, rng.randint(1, 6)):
            api.call("PUT", f"/songs/{song_id}/likes", token=tokens[username], ok=(200, 201, 204, 409))
        for _ in range(rng.randint(1, 12)):
            api.call("POST", f"/songs/{song_id}/plays", ok=(200, 201, 202, 204, 409, 429))

    print("   reviews (through the legacy importer)", flush=True)
    legacy = os.path.join(args.work, "reviews")
    os.makedirs(legacy, exist_ok=True)
    chars, reviews, ratings = [], [], []
    now_ms = int(time.time() * 1000)
    for song_id, owner in audio_songs:
        aspect_ids = []
        for aspect in ASPECTS:
            chars.append([len(chars) + 1, song_id, aspect])
            aspect_ids.append(len(chars))
        for _ in range(rng.randint(4, 14)):
            rid = len(reviews) + 1
            rating = rng.choices([1, 2, 3, 4, 5], weights=[1, 2, 5, 9, 8])[0]
            name = rng.choice([a for a, _ in ARTISTS if a != owner])
            reviews.append([rid, song_id, rating, now_ms - rng.randint(0, 90) * 86_400_000,
                            rng.choice(SUMMARIES), rng.choice(BODIES), str(rating >= 3).lower(), "false",
                            name, f"{name}@audiostorm.test", "null", rng.randint(0, 9)])
            for cid in aspect_ids:
                ratings.append([len(ratings) + 1, cid, rid, max(1, min(5, rating + rng.randint(-1, 1)))])
    files = {
        "characteristics.csv": (["id", "product_id", "name"], chars),
        "reviews.csv": (["id", "product_id", "rating", "date", "summary", "body", "recommend", "reported",
                         "reviewer_name", "reviewer_email", "response", "helpfulness"], reviews),
        "reviews_photos.csv": (["id", "review_id", "url"], []),
        "characteristic_reviews.csv": (["id", "characteristic_id", "review_id", "value"], ratings),
    }
    for name, (header, rows) in files.items():
        with open(os.path.join(legacy, name), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    env = dict(os.environ, APP__POSTGRES__DATABASE=args.reviews_database, APP__TELEMETRY__LOG_LEVEL="warn")
    subprocess.run([args.reviews_bin, "import", legacy, "--rejects", os.path.join(args.work, "rejects.csv")],
                   env=env, check=True, stdout=subprocess.DEVNULL)

    with open(os.path.join(args.work, "accounts.txt"), "w") as f:
        f.write("Demo accounts (password: '" + PASSWORD + "'): "
                + ", ".join(u for u, _ in ARTISTS) + "\n")
    print(f"   done: {len(ARTISTS)} artists, {len(audio_songs) + args.catalogue} songs, "
          f"{len(reviews)} reviews", flush=True)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print(f"demo data: {e}", file=sys.stderr)
        sys.exit(1)
