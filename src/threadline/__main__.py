from threadline.cli import app

app(prog_name="threadline")
